#include "backup/pipeline/chunk_fetcher.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backup/repo/chunk_codec.h"

namespace vdisk::backup {

namespace {

struct RangeJob {
  uint32_t pack = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  size_t first_position = 0;      // smallest position of its items in the caller's list
  std::vector<size_t> items;      // indexes into the item list, ascending by offset
};

std::vector<RangeJob> PlanRanges(const std::vector<FetchItem>& items, const FetchOptions& o) {
  std::map<uint32_t, std::vector<size_t>> by_pack;
  for (size_t i = 0; i < items.size(); ++i) by_pack[items[i].location.pack].push_back(i);
  std::vector<RangeJob> jobs;
  for (auto& [pack, list] : by_pack) {
    std::sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return items[a].location.offset < items[b].location.offset;
    });
    RangeJob cur;
    for (size_t i : list) {
      const auto& loc = items[i].location;
      const uint64_t end = loc.offset + loc.length;
      bool fits = !cur.items.empty() && loc.offset <= cur.offset + cur.length + o.max_gap_bytes &&
                  std::max(end, cur.offset + cur.length) - cur.offset <= o.max_range_bytes;
      if (!cur.items.empty() && !fits) {
        jobs.push_back(std::move(cur));
        cur = RangeJob{};
      }
      if (cur.items.empty()) {
        cur.pack = pack;
        cur.offset = loc.offset;
        cur.length = loc.length;
        cur.first_position = i;
      } else {
        cur.length = std::max(end, cur.offset + cur.length) - cur.offset;
        cur.first_position = std::min(cur.first_position, i);
      }
      cur.items.push_back(i);
    }
    if (!cur.items.empty()) jobs.push_back(std::move(cur));
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const RangeJob& a, const RangeJob& b) { return a.first_position < b.first_position; });
  return jobs;
}

}  // namespace

Status FetchChunks(const Repository& repo, const ChunkIndex& index, std::vector<FetchItem> items,
                   const FetchOptions& options, const FetchSink& sink,
                   std::atomic<uint64_t>* bytes_fetched, const std::atomic<bool>* cancel) {
  std::vector<RangeJob> jobs = PlanRanges(items, options);
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto failed = [&] {
    std::lock_guard l(mu);
    return !first_error.ok();
  };
  auto fail = [&](Status s) {
    std::lock_guard l(mu);
    if (first_error.ok()) first_error = std::move(s);
  };
  auto worker = [&] {
    std::string data;
    while (!failed()) {
      if (cancel && cancel->load()) {
        fail(absl::CancelledError("cancelled"));
        return;
      }
      size_t j = next++;
      if (j >= jobs.size()) return;
      const RangeJob& job = jobs[j];
      const std::string& pack = index.packs()[job.pack].name;
      auto range = repo.store().GetRange(PackKey(pack), job.offset, job.length);
      if (!range.ok()) {
        // A missing pack or short object is a per-chunk problem, not a transport failure.
        if (absl::IsNotFound(range.status()) || absl::IsOutOfRange(range.status())) {
          for (size_t i : job.items) {
            data.clear();
            Status st = absl::DataLossError(
                absl::StrCat("pack ", pack.substr(0, 16), ": ", range.status().message()));
            Status s = sink(items[i], st, data);
            if (!s.ok()) return fail(s);
          }
          continue;
        }
        return fail(Annotate(range.status(), absl::StrCat("reading pack ", pack)));
      }
      if (bytes_fetched) *bytes_fetched += job.length;
      for (size_t i : job.items) {
        const FetchItem& it = items[i];
        std::string_view blob =
            std::string_view(*range).substr(it.location.offset - job.offset, it.location.length);
        Status st;
        data.clear();
        if (options.decode)
          st = DecodeChunk(repo.keys(), it.id, blob, it.location.raw_length, &data);
        Status s = sink(it, st, data);
        if (!s.ok()) return fail(s);
      }
    }
  };
  const unsigned n = std::max(1u, std::min<unsigned>(options.parallel, jobs.size()));
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return first_error;
}

}  // namespace vdisk::backup
