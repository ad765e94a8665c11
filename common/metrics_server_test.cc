#include "common/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace vdisk::metrics {
namespace {

// One raw HTTP exchange with 127.0.0.1:port; returns everything the server sent.
std::string Exchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(MetricsServer, ServesTheRegistryOnGetMetrics) {
  Registry r;
  r.Counters("vdisk_test_scrapes_total", "Scrapes.").With({}).Inc(7);
  auto s = MetricsServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_GT((*s)->port(), 0);
  std::string resp = Exchange((*s)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 200 OK\r\n")) << resp;
  EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << resp;
  EXPECT_NE(resp.find("\r\n\r\n# HELP vdisk_test_scrapes_total Scrapes.\n"), std::string::npos);
  EXPECT_NE(resp.find("vdisk_test_scrapes_total 7\n"), std::string::npos);
  // The body length is announced exactly.
  std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
  EXPECT_NE(resp.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
}

TEST(MetricsServer, OtherPathsAndMethodsAndGarbageGetErrors) {
  Registry r;
  auto s = MetricsServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(s.ok()) << s.status();
  int port = (*s)->port();
  EXPECT_TRUE(Exchange(port, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(Exchange(port, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
  EXPECT_TRUE(Exchange(port, "garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
  EXPECT_TRUE(Exchange(port, std::string(20000, 'A')).starts_with("HTTP/1.1 431"));
  std::string head = Exchange(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << "HEAD has no body";
  // Still serving after all that.
  EXPECT_TRUE(Exchange(port, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
}

TEST(MetricsServer, AddressesAreParsedStrictly) {
  EXPECT_EQ(ParseHostPort(":9100")->first, "");
  EXPECT_EQ(ParseHostPort(":9100")->second, 9100);
  EXPECT_EQ(ParseHostPort("[::1]:80")->first, "::1");
  EXPECT_EQ(ParseHostPort("0.0.0.0:8080")->second, 8080);
  for (const char* bad : {"9100", "host:", "host:99999", "::1:80", "[::1]80", "h:x"})
    EXPECT_EQ(ParseHostPort(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  Registry r;
  EXPECT_FALSE(MetricsServer::Start("256.1.1.1:0", &r).ok());
}

TEST(MetricsServer, ABusyPortIsAnError) {
  Registry r;
  auto a = MetricsServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(a.ok());
  auto b = MetricsServer::Start("127.0.0.1:" + std::to_string((*a)->port()), &r);
  EXPECT_FALSE(b.ok());
}

}  // namespace
}  // namespace vdisk::metrics
