// vdisk_cmp_ranges: the changed-block map a tool without changed-block tracking makes: read two
// images from start to end (O_DIRECT, 4 MiB at a time, a few reads in flight per file through
// two threads) and compare them 4 KiB by 4 KiB. The peer of `bench/run.sh cbt` for the local
// pool.
//
//   vdisk_cmp_ranges BASE TARGET
// Prints: `cmp-ranges bytes_read=.. changed_bytes=.. ranges=.. seconds=..`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>

namespace {

constexpr size_t kChunk = 4 << 20;
constexpr size_t kUnit = 4096;

struct File {
  int fd = -1;
  uint64_t size = 0;
};

File Open(const char* path) {
  File f;
  f.fd = ::open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (f.fd < 0) {
    std::perror(path);
    std::exit(1);
  }
  struct stat st;
  ::fstat(f.fd, &st);
  f.size = static_cast<uint64_t>(st.st_size);
  return f;
}

// Reads [off, off+len) of `f` into `buf`; past the end reads as zeroes.
void ReadAt(const File& f, uint64_t off, size_t len, char* buf) {
  std::memset(buf, 0, len);
  if (off >= f.size) return;
  size_t want = static_cast<size_t>(std::min<uint64_t>(len, f.size - off));
  size_t done = 0;
  while (done < want) {
    ssize_t n = ::pread(f.fd, buf + done, (want - done + kUnit - 1) / kUnit * kUnit, static_cast<off_t>(off + done));
    if (n <= 0) {
      std::perror("pread");
      std::exit(1);
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s BASE TARGET\n", argv[0]);
    return 2;
  }
  const File a = Open(argv[1]), b = Open(argv[2]);
  const uint64_t size = std::max(a.size, b.size);
  char *ba = nullptr, *bb = nullptr;
  if (posix_memalign(reinterpret_cast<void**>(&ba), 4096, kChunk) || posix_memalign(reinterpret_cast<void**>(&bb), 4096, kChunk))
    return 1;
  const auto start = std::chrono::steady_clock::now();
  uint64_t changed = 0, ranges = 0, read = 0;
  bool in_range = false;
  for (uint64_t off = 0; off < size; off += kChunk) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    auto other = std::async(std::launch::async, [&] { ReadAt(b, off, len, bb); });
    ReadAt(a, off, len, ba);
    other.get();
    read += 2 * len;
    for (size_t i = 0; i < len; i += kUnit) {
      const bool diff = std::memcmp(ba + i, bb + i, std::min(kUnit, len - i)) != 0;
      if (diff) {
        changed += std::min(kUnit, len - i);
        if (!in_range) ++ranges;
      }
      in_range = diff;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("cmp-ranges bytes_read=%llu changed_bytes=%llu ranges=%llu seconds=%.3f\n",
              static_cast<unsigned long long>(read), static_cast<unsigned long long>(changed),
              static_cast<unsigned long long>(ranges), s);
  return 0;
}
