// Test helpers for the Prometheus endpoint of a running vdisk-csi: find its port in the log,
// scrape it over HTTP, and read one series' value from the text.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <regex>
#include <string>

namespace vdisk::csi::testing {

// The port vdisk-csi logged for --metrics-address ("... (port N) ..."), or 0.
inline int MetricsPortFromLog(const std::string& log) {
  std::smatch m;
  static const std::regex re("Prometheus metrics on \\S+ \\(port ([0-9]+)\\)");
  return std::regex_search(log, m, re) ? std::stoi(m[1]) : 0;
}

// GET /metrics from 127.0.0.1:port; the body ("" on any failure).
inline std::string Scrape(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  auto body = out.find("\r\n\r\n");
  return out.starts_with("HTTP/1.1 200") && body != std::string::npos ? out.substr(body + 4) : "";
}

// The value of the sample whose name-and-labels text is exactly `series` (e.g.
// `vdisk_csi_calls_total{method="Probe",code="OK"}`), or nullopt.
inline std::optional<double> SeriesValue(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      size_t v = pos + series.size() + 1;
      return std::stod(text.substr(v, text.find('\n', v) - v));
    }
    pos += series.size();
  }
  return std::nullopt;
}

}  // namespace vdisk::csi::testing
