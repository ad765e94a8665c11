#include "tests/backup/backup_test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "backup/s3/sigv4.h"

namespace vdisk::backup::testing {

std::string ScratchDir(const std::string& name) {
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  std::string base = bin && *bin ? std::string(bin) + "/test-tmp" : "/tmp";
  std::string dir = base + "/backup-" + std::to_string(::getpid()) + "-" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

namespace {

void FillBuffer(std::string* buf, Fill fill, uint64_t seed, uint64_t offset) {
  std::mt19937_64 rng(seed * 1000003 + offset);
  switch (fill) {
    case Fill::kZero:
      std::fill(buf->begin(), buf->end(), '\0');
      break;
    case Fill::kRandom:
      for (size_t i = 0; i + 8 <= buf->size(); i += 8) {
        uint64_t v = rng();
        std::memcpy(buf->data() + i, &v, 8);
      }
      break;
    case Fill::kCompressible:
      // Text-like: words from a small vocabulary, so zstd compresses it ~3-4x.
      for (size_t i = 0; i < buf->size(); ++i) {
        static const char kAlphabet[] = "vdisk backup block chunk pack ";
        (*buf)[i] = kAlphabet[(rng() >> 7) % (sizeof kAlphabet - 1)];
      }
      break;
  }
}

}  // namespace

void WriteRegions(const std::string& path, const std::vector<Region>& regions) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  std::string buf;
  for (const auto& r : regions) {
    for (uint64_t off = 0; off < r.length; off += 1 << 20) {
      uint64_t len = std::min<uint64_t>(1 << 20, r.length - off);
      buf.resize(len);
      FillBuffer(&buf, r.fill, r.seed, r.offset + off);
      ASSERT_EQ(::pwrite(fd, buf.data(), len, static_cast<off_t>(r.offset + off)),
                static_cast<ssize_t>(len));
    }
  }
  ::fsync(fd);
  ::close(fd);
}

void MakeDisk(const std::string& path, uint64_t size, const std::vector<Region>& regions) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  ::close(fd);
  WriteRegions(path, regions);
}

std::string Sha256File(const std::string& path) {
  std::string out;
  EXPECT_EQ(Run("sha256sum '" + path + "' | cut -d' ' -f1", &out), 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

RepoSecret Password(const std::string& pw) {
  return RepoSecret{RepoSecret::Kind::kPassword, pw, "test password"};
}

InitOptions SmallRepo() {
  InitOptions o;
  o.chunk_size = 1 << 20;
  o.pack_size = 8 << 20;
  o.scrypt = ScryptParams{1 << 12, 8, 1};
  return o;
}

int Run(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int rc = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string VdiskBinary() {
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  return std::string(bin && *bin ? bin : ".") + "/cli/vdisk";
}

std::string CephDir() {
  const char* d = std::getenv("VDISK_CEPH_DIR");
  return d ? d : "";
}

std::string CephScript() {
  const char* src = std::getenv("VDISK_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/env/ceph.sh";
}

}  // namespace vdisk::backup::testing
