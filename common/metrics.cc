#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>


namespace vdisk::metrics {

namespace {

bool ValidName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "metrics: %s\n", what.c_str());  // a bug: say it where it dies
  std::abort();
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string Escape(const std::string& s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (le for histogram buckets).
std::string LabelText(const std::vector<std::string>& names, const LabelValues& values,
                      const std::string& extra_name = "", const std::string& extra_value = "") {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ",";
    out += names[i] + "=\"" + Escape(values[i], true) + "\"";
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

std::string Header(const std::string& name, const std::string& help, Type type) {
  return "# HELP " + name + " " + Escape(help, false) + "\n# TYPE " + name + " " +
         TypeName(type) + "\n";
}

}  // namespace

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                        5,      10,      30,     60};
  return b;
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  // The +Inf bucket is the count by definition; read concurrently the two may differ by an
  // observation in flight, so report the bucket total for both.
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, Type type,
                  std::vector<std::string> label_names, std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  if (!ValidName(name_)) Misuse("bad metric name '" + name_ + "'");
  for (const auto& l : label_names_)
    if (!ValidName(l) || l == "le") Misuse("bad label name '" + l + "' of " + name_);
}

template <typename T>
std::shared_ptr<T> Family<T>::Share(const LabelValues& values) {
  if (values.size() != label_names_.size())
    Misuse(name_ + ": " + std::to_string(values.size()) + " label values for " +
           std::to_string(label_names_.size()) + " labels");
  std::lock_guard lock(mu_);
  auto& slot = children_[values];
  if (!slot) {
    if constexpr (std::is_same_v<T, Histogram>) slot = std::make_shared<T>(&bounds_);
    else slot = std::make_shared<T>();
  }
  return slot;
}

template <typename T>
void Family<T>::Remove(const LabelValues& values) {
  std::lock_guard lock(mu_);
  children_.erase(values);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry& Registry::Default() {
  static Registry* r = new Registry();  // never destroyed: children outlive static destructors
  return *r;
}

template <typename T>
Family<T>& Registry::Get(std::map<std::string, std::unique_ptr<Family<T>>>& m,
                         const std::string& name, const std::string& help, Type type,
                         std::vector<std::string> label_names, std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  auto it = m.find(name);
  if (it != m.end()) {
    if (it->second->label_names_ != label_names)
      Misuse("metric " + name + " registered twice with different labels");
    return *it->second;
  }
  auto f = std::unique_ptr<Family<T>>(
      new Family<T>(name, help, type, std::move(label_names), std::move(bounds)));
  auto& ref = *f;
  m.emplace(name, std::move(f));
  return ref;
}

Family<Counter>& Registry::Counters(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  return Get(counters_, name, help, Type::kCounter, std::move(label_names), {});
}
Family<Gauge>& Registry::Gauges(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names) {
  return Get(gauges_, name, help, Type::kGauge, std::move(label_names), {});
}
Family<Histogram>& Registry::Histograms(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds) {
  if (!std::is_sorted(bounds.begin(), bounds.end())) Misuse(name + ": bucket bounds not sorted");
  return Get(histograms_, name, help, Type::kHistogram, std::move(label_names), std::move(bounds));
}

uint64_t Registry::AddCollector(CollectFn fn) {
  std::lock_guard lock(mu_);
  uint64_t h = next_collector_++;
  collectors_.emplace(h, std::move(fn));
  return h;
}

void Registry::RemoveCollector(uint64_t handle) {
  std::lock_guard lock(mu_);
  collectors_.erase(handle);
}

std::string Registry::Render() const {
  std::map<std::string, std::string> blocks;  // metric name -> its text, to sort the output
  std::vector<CollectFn> collectors;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, f] : counters_) {
      std::string text = Header(name, f->help_, f->type_);
      std::lock_guard fl(f->mu_);
      for (const auto& [labels, c] : f->children_)
        text += name + LabelText(f->label_names_, labels) + " " + std::to_string(c->value()) + "\n";
      blocks[name] = std::move(text);
    }
    for (const auto& [name, f] : gauges_) {
      std::string text = Header(name, f->help_, f->type_);
      std::lock_guard fl(f->mu_);
      for (const auto& [labels, g] : f->children_)
        text += name + LabelText(f->label_names_, labels) + " " + Number(g->value()) + "\n";
      blocks[name] = std::move(text);
    }
    for (const auto& [name, f] : histograms_) {
      std::string text = Header(name, f->help_, f->type_);
      std::lock_guard fl(f->mu_);
      for (const auto& [labels, h] : f->children_) {
        Histogram::Snapshot s = h->snapshot();
        for (size_t i = 0; i <= f->bounds_.size(); ++i) {
          std::string le = i < f->bounds_.size() ? Number(f->bounds_[i]) : "+Inf";
          text += name + "_bucket" + LabelText(f->label_names_, labels, "le", le) + " " +
                  std::to_string(s.cumulative[i]) + "\n";
        }
        text += name + "_sum" + LabelText(f->label_names_, labels) + " " + Number(s.sum) + "\n";
        text += name + "_count" + LabelText(f->label_names_, labels) + " " +
                std::to_string(s.count) + "\n";
      }
      blocks[name] = std::move(text);
    }
    for (const auto& [h, fn] : collectors_) collectors.push_back(fn);
  }
  // Collectors run unlocked (they may be slow, and may register metrics themselves).
  std::vector<Collected> collected;
  for (const auto& fn : collectors) fn(collected);
  std::map<std::string, Collected*> merged;  // one header per name even if two collectors share it
  for (auto& c : collected) {
    if (!ValidName(c.name) || c.type == Type::kHistogram) continue;
    auto [it, fresh] = merged.emplace(c.name, &c);
    if (!fresh) {
      for (auto& s : c.samples) it->second->samples.push_back(std::move(s));
    }
  }
  for (const auto& [name, c] : merged) {
    if (blocks.contains(name)) continue;  // a registered family wins
    std::string text = Header(name, c->help, c->type);
    for (const auto& [labels, v] : c->samples) {
      if (labels.size() != c->label_names.size()) continue;
      text += name + LabelText(c->label_names, labels) + " " + Number(v) + "\n";
    }
    blocks[name] = std::move(text);
  }
  std::string out;
  for (const auto& [name, text] : blocks) out += text;
  return out;
}

}  // namespace vdisk::metrics
