// A small blocking HTTP(S) client on libcurl with a pool of keep-alive connections.
//
// Do() may be called from many threads at once: each call borrows one curl easy handle (and its
// open connection) from the pool and returns it afterwards, so N concurrent callers use N
// persistent connections. TLS peer and host verification are on unless turned off explicitly.
// Transport failures (connect, timeout, reset) return UNAVAILABLE with curl's message; any HTTP
// status is returned as a response for the caller to interpret.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backup/s3/sigv4.h"
#include "common/status.h"

namespace vdisk::backup::s3 {

struct HttpOptions {
  bool verify_tls = true;
  std::string ca_file;  // PEM bundle; empty = the system's
  long connect_timeout_ms = 10000;
  // A transfer slower than low_speed_bytes/s for low_speed_seconds is aborted (UNAVAILABLE).
  long low_speed_bytes = 1024;
  long low_speed_seconds = 30;
};

struct HttpRequest {
  std::string method = "GET";  // GET, PUT, POST, DELETE, HEAD
  std::string url;
  KeyValues headers;
  std::string_view body;  // must stay valid during Do()
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  StatusOr<HttpResponse> Do(const HttpRequest& request);

 private:
  void* Acquire();
  void Release(void* handle);

  HttpOptions options_;
  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace vdisk::backup::s3
