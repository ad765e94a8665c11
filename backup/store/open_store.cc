#include "backup/store/open_store.h"

#include <cstdlib>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backup/store/file_store.h"
#include "backup/store/s3_store.h"
#include "common/fs.h"

namespace vdisk::backup {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

void SetIfEmpty(std::string* field, const std::string& value) {
  if (field->empty() && !value.empty()) *field = value;
}

std::string Unquote(std::string v) {
  if (v.size() >= 2 && ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\'')))
    return v.substr(1, v.size() - 2);
  return v;
}

// "%2F" style decoding for URI query values.
std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 2).c_str(), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

void ApplyEnvironment(StoreOptions* o) {
  SetIfEmpty(&o->endpoint, Env("S3_ENDPOINT"));
  SetIfEmpty(&o->endpoint, Env("AWS_ENDPOINT_URL_S3"));
  SetIfEmpty(&o->endpoint, Env("AWS_ENDPOINT_URL"));
  SetIfEmpty(&o->region, Env("S3_REGION"));
  SetIfEmpty(&o->region, Env("AWS_REGION"));
  SetIfEmpty(&o->region, Env("AWS_DEFAULT_REGION"));
  SetIfEmpty(&o->access_key, Env("S3_ACCESS_KEY"));
  SetIfEmpty(&o->access_key, Env("AWS_ACCESS_KEY_ID"));
  SetIfEmpty(&o->secret_key, Env("S3_SECRET_KEY"));
  SetIfEmpty(&o->secret_key, Env("AWS_SECRET_ACCESS_KEY"));
  SetIfEmpty(&o->session_token, Env("AWS_SESSION_TOKEN"));
  SetIfEmpty(&o->ca_file, Env("S3_CA_FILE"));
  SetIfEmpty(&o->ca_file, Env("AWS_CA_BUNDLE"));
}

Status LoadCredentialsFile(const std::string& path, StoreOptions* o) {
  ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  std::map<std::string, std::string> kv;
  bool in_default = true;  // AWS files: only [default]
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    std::string line(absl::StripAsciiWhitespace(raw));
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      in_default = line == "[default]";
      continue;
    }
    if (!in_default) continue;
    if (line.starts_with("export ")) line = line.substr(7);
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k(absl::StripAsciiWhitespace(line.substr(0, eq)));
    std::string v(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    kv[absl::AsciiStrToLower(k)] = Unquote(v);
  }
  auto pick = [&](std::string* field, std::initializer_list<const char*> names) {
    for (const char* n : names) {
      auto it = kv.find(n);
      if (it != kv.end() && !it->second.empty()) {
        *field = it->second;
        return;
      }
    }
  };
  pick(&o->access_key, {"s3_access_key", "aws_access_key_id", "access_key"});
  pick(&o->secret_key, {"s3_secret_key", "aws_secret_access_key", "secret_key"});
  pick(&o->session_token, {"aws_session_token"});
  pick(&o->endpoint, {"s3_endpoint", "aws_endpoint_url", "endpoint_url", "endpoint"});
  pick(&o->region, {"s3_region", "aws_region", "region"});
  if (o->access_key.empty() || o->secret_key.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("credentials file ", path, " has no access key / secret key"));
  return Status();
}

StatusOr<std::unique_ptr<ObjectStore>> OpenStore(const std::string& uri, StoreOptions o) {
  if (uri.starts_with("file://")) return OpenFileStore(uri.substr(7));
  if (uri.starts_with("/")) return OpenFileStore(uri);
  if (!uri.starts_with("s3://"))
    return absl::InvalidArgumentError(absl::StrCat(
        "repository '", uri, "' must be file:///absolute/path or s3://bucket[/prefix]"));
  std::string rest = uri.substr(5);
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  for (absl::string_view item : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    std::string v = PercentDecode(kv.second);
    if (kv.first == "endpoint") o.endpoint = v;
    else if (kv.first == "region") o.region = v;
    else if (kv.first == "path_style" || kv.first == "path-style") o.path_style = (v != "false" && v != "0");
    else
      return absl::InvalidArgumentError(absl::StrCat("unknown repository URI option '", kv.first,
                                                     "' (endpoint, region, path_style)"));
  }
  ApplyEnvironment(&o);
  S3StoreOptions so;
  auto slash = rest.find('/');
  so.s3.bucket = rest.substr(0, slash);
  so.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (so.s3.bucket.empty()) return absl::InvalidArgumentError("s3:// repository needs a bucket");
  so.s3.region = o.region.empty() ? "us-east-1" : o.region;
  if (o.endpoint.empty()) {
    so.s3.endpoint = absl::StrCat("https://s3.", so.s3.region, ".amazonaws.com");
    so.s3.path_style = o.path_style.value_or(false);
  } else {
    so.s3.endpoint = o.endpoint;
    so.s3.path_style = o.path_style.value_or(true);
  }
  so.s3.credentials = {o.access_key, o.secret_key, o.session_token};
  so.s3.http.verify_tls = !o.insecure_tls;
  so.s3.http.ca_file = o.ca_file;
  so.s3.retry.max_seconds = o.retry_seconds;
  so.concurrency = std::max(1u, o.concurrency);
  so.max_parts_in_flight = so.concurrency + 4;
  so.part_size = o.part_size;
  return OpenS3Store(std::move(so));
}

}  // namespace vdisk::backup
