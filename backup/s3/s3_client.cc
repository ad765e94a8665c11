#include "backup/s3/s3_client.h"

#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backup/s3/xml.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup::s3 {

namespace {

bool IsRetryableStatus(long status, std::string_view code) {
  if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429)
    return true;
  return code == "RequestTimeout" || code == "SlowDown" || code == "InternalError" ||
         code == "ServiceUnavailable";
}

std::string ErrorCode(const HttpResponse& r) {
  return XmlText(r.body, "Code").value_or("");
}

double JitteredDelayMs(const RetryPolicy& p, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double d = p.base_delay_ms * static_cast<double>(1ull << std::min(attempt, 20));
  d = std::min(d, p.max_delay_ms);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  return d * jitter(rng);
}

}  // namespace

Status ParseEndpoint(const std::string& endpoint, std::string* scheme, std::string* host) {
  auto sep = endpoint.find("://");
  if (sep == std::string::npos)
    return absl::InvalidArgumentError(
        absl::StrCat("S3 endpoint '", endpoint, "' must be http://host[:port] or https://..."));
  *scheme = endpoint.substr(0, sep);
  if (*scheme != "http" && *scheme != "https")
    return absl::InvalidArgumentError(
        absl::StrCat("S3 endpoint scheme must be http or https: '", endpoint, "'"));
  std::string rest = endpoint.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos || rest.find('@') != std::string::npos)
    return absl::InvalidArgumentError(
        absl::StrCat("S3 endpoint must be scheme://host[:port] without a path: '", endpoint, "'"));
  *host = rest;
  return Status();
}

StatusOr<std::unique_ptr<S3Client>> S3Client::Create(S3Config config) {
  if (config.bucket.empty()) return absl::InvalidArgumentError("S3 bucket name is empty");
  if (config.bucket.find('/') != std::string::npos)
    return absl::InvalidArgumentError("S3 bucket name must not contain '/'");
  if (config.credentials.access_key.empty() || config.credentials.secret_key.empty())
    return absl::InvalidArgumentError(
        "S3 credentials missing: set S3_ACCESS_KEY/S3_SECRET_KEY (or AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY), or pass --s3-credentials-file");
  if (config.region.empty()) config.region = "us-east-1";
  std::unique_ptr<S3Client> c(new S3Client(std::move(config)));
  RETURN_IF_ERROR(ParseEndpoint(c->config_.endpoint, &c->scheme_, &c->host_));
  if (!c->config_.path_style) c->host_ = c->config_.bucket + "." + c->host_;
  c->http_ = std::make_unique<HttpClient>(c->config_.http);
  return c;
}

S3Client::S3Client(S3Config config) : config_(std::move(config)) {}

std::string S3Client::describe() const {
  return absl::StrCat("s3://", config_.bucket, " at ", config_.endpoint);
}

StatusOr<HttpResponse> S3Client::SendOnce(const Call& call) {
  std::string path = "/";
  if (config_.path_style) {
    path += UriEncode(config_.bucket, true);
    if (!call.key.empty()) path += "/" + UriEncode(call.key, false);
  } else {
    path += UriEncode(call.key, false);
  }
  std::string payload_hash;
  if (call.body.size() >= config_.sign_payload_below) {
    payload_hash = std::string(kUnsignedPayload);
  } else {
    payload_hash = call.body.empty() ? std::string(kEmptySha256) : Sha256Hex(call.body);
  }
  const std::string amz_date = AmzDate(std::time(nullptr));
  SigningInput in;
  in.method = call.method;
  in.encoded_path = path;
  in.query = call.query;
  in.headers = call.headers;
  in.headers.emplace_back("host", host_);
  in.headers.emplace_back("x-amz-date", amz_date);
  in.headers.emplace_back("x-amz-content-sha256", payload_hash);
  if (!config_.credentials.session_token.empty())
    in.headers.emplace_back("x-amz-security-token", config_.credentials.session_token);
  in.payload_hash = payload_hash;

  HttpRequest req;
  req.method = call.method;
  req.url = absl::StrCat(scheme_, "://", host_, path);
  std::string qs = CanonicalQueryString(call.query);
  if (!qs.empty()) req.url += "?" + qs;
  req.headers = in.headers;
  req.headers.emplace_back("Authorization",
                           Authorization(config_.credentials, config_.region, "s3", amz_date, in));
  if (call.method == "POST") req.headers.emplace_back("Content-Type", "application/xml");
  req.body = call.body;
  return http_->Do(req);
}

Status S3Client::MapError(const Call& call, const HttpResponse& r) const {
  const std::string code = ErrorCode(r);
  const std::string message = XmlText(r.body, "Message").value_or("");
  const std::string what =
      call.key.empty() ? describe() : absl::StrCat("'", call.key, "' in ", describe());
  std::string detail = absl::StrCat(call.method, " ", what, ": HTTP ", r.status,
                                    code.empty() ? "" : " " + code,
                                    message.empty() ? "" : " (" + message + ")");
  if (code == "NoSuchBucket")
    return absl::NotFoundError(absl::StrCat("bucket '", config_.bucket, "' does not exist at ",
                                            config_.endpoint));
  switch (r.status) {
    case 404:
      return absl::NotFoundError(detail);
    case 401:
    case 403:
      return absl::PermissionDeniedError(detail);
    case 409:
    case 412:
      return absl::AlreadyExistsError(detail);
    case 416:
      return absl::OutOfRangeError(detail);
    case 301:
    case 307:
    case 308:
      return absl::FailedPreconditionError(absl::StrCat(
          detail, ": the bucket lives elsewhere; check --s3-region / --s3-endpoint"));
    default:
      break;
  }
  if (IsRetryableStatus(r.status, code)) return absl::UnavailableError(detail);
  return absl::InvalidArgumentError(detail);
}

StatusOr<HttpResponse> S3Client::Send(const Call& call) {
  const auto start = std::chrono::steady_clock::now();
  Status last;
  for (int attempt = 0;; ++attempt) {
    auto r = SendOnce(call);
    bool retry = false;
    if (!r.ok()) {
      last = r.status();
      retry = true;  // transport: connect refused, reset, timeout
    } else if (r->status >= 200 && r->status < 300) {
      // CompleteMultipartUpload may answer 200 with an <Error> body.
      if (call.method == "POST" && r->body.find("<Error>") != std::string::npos) {
        const std::string code = ErrorCode(*r);
        last = absl::UnavailableError(absl::StrCat("POST '", call.key, "': ", code));
        retry = IsRetryableStatus(500, code);
        if (!retry) return absl::InvalidArgumentError(absl::StrCat("POST '", call.key, "': ", code));
      } else {
        return std::move(*r);
      }
    } else {
      if (r->status == 404 && attempt > 0 && call.retry_not_found_as_done) return std::move(*r);
      last = MapError(call, *r);
      retry = IsRetryableStatus(r->status, ErrorCode(*r));
      if (!retry) return last;
    }
    double elapsed_ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - start).count();
    double delay = JitteredDelayMs(config_.retry, attempt);
    if (attempt + 1 >= config_.retry.max_attempts ||
        elapsed_ms + delay > config_.retry.max_seconds * 1000) {
      return absl::UnavailableError(absl::StrCat(last.message(), " (gave up after ", attempt + 1,
                                                 " attempts in ",
                                                 static_cast<int>(elapsed_ms / 1000), " s)"));
    }
    spdlog::debug("s3 retry {} {} attempt={} delay_ms={} error={}", call.method, call.key,
                  attempt + 1, static_cast<int>(delay), std::string(last.message()));
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(delay * 1000)));
  }
}

Status S3Client::HeadBucket() {
  Call c{.method = "HEAD"};
  auto r = Send(c);
  if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound)
    return absl::NotFoundError(absl::StrCat("bucket '", config_.bucket, "' does not exist at ",
                                            config_.endpoint));
  return r.status();
}

Status S3Client::CreateBucket() {
  std::string body;
  if (config_.region != "us-east-1")
    body = absl::StrCat(
        "<CreateBucketConfiguration><LocationConstraint>", XmlEscape(config_.region),
        "</LocationConstraint></CreateBucketConfiguration>");
  Call c{.method = "PUT", .body = body};
  auto r = Send(c);
  if (!r.ok() && r.status().code() == absl::StatusCode::kAlreadyExists) {
    // BucketAlreadyOwnedByYou is fine; BucketAlreadyExists (someone else's) is not.
    if (r.status().message().find("BucketAlreadyOwnedByYou") != std::string_view::npos)
      return Status();
  }
  return r.status();
}

Status S3Client::PutObject(const std::string& key, std::string_view data, bool if_none_match) {
  Call c{.method = "PUT", .key = key, .body = data};
  if (if_none_match) c.headers.emplace_back("if-none-match", "*");
  return Send(c).status();
}

StatusOr<std::string> S3Client::GetObject(const std::string& key, uint64_t offset,
                                          uint64_t length) {
  Call c{.method = "GET", .key = key};
  if (length > 0) c.headers.emplace_back("range", absl::StrCat("bytes=", offset, "-", offset + length - 1));
  ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  if (length > 0 && r.body.size() != length)
    return absl::OutOfRangeError(absl::StrCat("GET '", key, "' range ", offset, "+", length,
                                              ": got ", r.body.size(), " bytes"));
  return std::move(r.body);
}

StatusOr<ObjectInfo> S3Client::HeadObject(const std::string& key) {
  Call c{.method = "HEAD", .key = key};
  ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  ObjectInfo info;
  info.key = key;
  auto it = r.headers.find("content-length");
  if (it != r.headers.end()) (void)absl::SimpleAtoi(it->second, &info.size);
  if (auto e = r.headers.find("etag"); e != r.headers.end()) info.etag = e->second;
  if (auto m = r.headers.find("last-modified"); m != r.headers.end()) info.last_modified = m->second;
  return info;
}

Status S3Client::DeleteObject(const std::string& key) {
  Call c{.method = "DELETE", .key = key};
  auto r = Send(c);
  if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound &&
      r.status().message().find("NoSuchBucket") == std::string_view::npos &&
      r.status().message().find("does not exist") == std::string_view::npos)
    return Status();
  return r.status();
}

StatusOr<ListPage> S3Client::ListObjectsPage(const std::string& prefix, const std::string& token,
                                             int max_keys) {
  Call c{.method = "GET"};
  c.query = {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", absl::StrCat(max_keys)}};
  if (!token.empty()) c.query.emplace_back("continuation-token", token);
  ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  ListPage page;
  for (std::string_view item : XmlElements(r.body, "Contents")) {
    ObjectInfo info;
    info.key = XmlText(item, "Key").value_or("");
    (void)absl::SimpleAtoi(XmlText(item, "Size").value_or("0"), &info.size);
    info.etag = XmlText(item, "ETag").value_or("");
    info.last_modified = XmlText(item, "LastModified").value_or("");
    page.objects.push_back(std::move(info));
  }
  if (XmlText(r.body, "IsTruncated").value_or("false") == "true") {
    page.next_token = XmlText(r.body, "NextContinuationToken").value_or("");
    if (page.next_token.empty())
      return absl::InternalError("ListObjectsV2: truncated page without a continuation token");
  }
  return page;
}

StatusOr<std::vector<ObjectInfo>> S3Client::ListObjects(const std::string& prefix) {
  std::vector<ObjectInfo> all;
  std::string token;
  do {
    ASSIGN_OR_RETURN(ListPage page, ListObjectsPage(prefix, token));
    for (auto& o : page.objects) all.push_back(std::move(o));
    token = page.next_token;
  } while (!token.empty());
  return all;
}

StatusOr<std::string> S3Client::CreateMultipartUpload(const std::string& key) {
  Call c{.method = "POST", .key = key, .query = {{"uploads", ""}}};
  ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  auto id = XmlText(r.body, "UploadId");
  if (!id || id->empty())
    return absl::InternalError(absl::StrCat("CreateMultipartUpload '", key, "': no UploadId"));
  return *id;
}

StatusOr<std::string> S3Client::UploadPart(const std::string& key, const std::string& upload_id,
                                           int part_number, std::string_view data) {
  Call c{.method = "PUT", .key = key, .body = data};
  c.query = {{"partNumber", absl::StrCat(part_number)}, {"uploadId", upload_id}};
  ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  auto it = r.headers.find("etag");
  if (it == r.headers.end() || it->second.empty())
    return absl::InternalError(absl::StrCat("UploadPart '", key, "' #", part_number, ": no ETag"));
  return it->second;
}

Status S3Client::CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                         const std::vector<CompletedPart>& parts) {
  std::string body = "<CompleteMultipartUpload>";
  for (const auto& p : parts)
    absl::StrAppend(&body, "<Part><PartNumber>", p.number, "</PartNumber><ETag>",
                    XmlEscape(p.etag), "</ETag></Part>");
  body += "</CompleteMultipartUpload>";
  Call c{.method = "POST", .key = key, .query = {{"uploadId", upload_id}}, .body = body,
         .retry_not_found_as_done = true};
  ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  if (r.status == 404) {
    // A retry after a completion whose answer was lost: the upload is gone; the object must be
    // there.
    auto head = HeadObject(key);
    if (!head.ok())
      return absl::UnavailableError(
          absl::StrCat("CompleteMultipartUpload '", key, "': upload vanished and no object"));
  }
  return Status();
}

Status S3Client::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  Call c{.method = "DELETE", .key = key, .query = {{"uploadId", upload_id}}};
  auto r = Send(c);
  if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound) return Status();
  return r.status();
}

StatusOr<std::vector<MultipartUpload>> S3Client::ListMultipartUploads(const std::string& prefix) {
  std::vector<MultipartUpload> out;
  std::string key_marker, id_marker;
  while (true) {
    Call c{.method = "GET", .query = {{"uploads", ""}, {"prefix", prefix}}};
    if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
    ASSIGN_OR_RETURN(HttpResponse r, Send(c));
    for (std::string_view item : XmlElements(r.body, "Upload")) {
      MultipartUpload u;
      u.key = XmlText(item, "Key").value_or("");
      u.upload_id = XmlText(item, "UploadId").value_or("");
      u.initiated = XmlText(item, "Initiated").value_or("");
      out.push_back(std::move(u));
    }
    if (XmlText(r.body, "IsTruncated").value_or("false") != "true") break;
    key_marker = XmlText(r.body, "NextKeyMarker").value_or("");
    id_marker = XmlText(r.body, "NextUploadIdMarker").value_or("");
    if (key_marker.empty() && id_marker.empty()) break;
  }
  return out;
}

}  // namespace vdisk::backup::s3
