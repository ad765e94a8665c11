// Shared by the export tests that speak vhost-user over the socket (no QEMU): a temporary
// directory under /tmp (short socket paths) holding the disk image and the socket, removed
// afterwards, plus reading the image back and test patterns.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "blockdev/vhost/export.h"

namespace vdisk::blockdev::vhost::testing {

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-vhost-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/disk.img";
    socket_ = dir_ + "/vhost.sock";
  }
  void TearDown() override {
    exp_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string ReadFile(uint64_t off, size_t len) {
    std::string out(len, '\0');
    int fd = ::open(image_.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, out.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
    ::close(fd);
    return out;
  }
  static std::string Pattern(size_t len, uint32_t seed) {
    std::string s(len, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  }

  std::string dir_, image_, socket_;
  std::unique_ptr<Export> exp_;
};

}  // namespace vdisk::blockdev::vhost::testing
