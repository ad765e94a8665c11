// vdtool: the test guest's disk tool (static binary in the initramfs; see tests/env/guest.sh).
// Block-device operations busybox lacks, with O_DIRECT so the I/O reaches the disk:
//   vdtool fill    <dev> <offset> <length> <seed>   write the position-dependent pattern
//   vdtool check   <dev> <offset> <length> <seed>   verify it (exit 1 on the first mismatch)
//   vdtool zeroes  <dev> <offset> <length>          verify the range reads as zeroes
//   vdtool discard <dev> <offset> <length>          BLKDISCARD (virtio-blk DISCARD)
//   vdtool zeroout <dev> <offset> <length>          BLKZEROOUT (virtio-blk WRITE_ZEROES)
//   vdtool flush   <dev>                            fsync (virtio-blk FLUSH)
//   vdtool size    <dev>                            prints the size in bytes
//   vdtool sha     <dev> <offset> <length>          prints a 64-bit FNV-1a of the range
//   vdtool rewrite <dev> <offset> <length> <seed> <seconds>
//                  writes the pattern over and over (write + fdatasync) for <seconds>: keeps
//                  writes and flushes in flight at little CPU cost (load for restart tests)
// The pattern must match tests/vhost/pattern.h: word at byte offset o (o % 8 == 0) is
// splitmix64(seed * 0x9E3779B97F4A7C15 + o / 8 + 1), little-endian.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static uint64_t pattern_word(uint64_t seed, uint64_t offset) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + offset / 8 + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void fill_pattern(uint64_t* buf, uint64_t seed, uint64_t offset, size_t len) {
  for (size_t i = 0; i < len / 8; i++) buf[i] = pattern_word(seed, offset + i * 8);
}

static int open_dev(const char* path, int flags) {
  int fd = open(path, flags | O_DIRECT);
  if (fd < 0) {
    fprintf(stderr, "vdtool: open %s: %s\n", path, strerror(errno));
    exit(2);
  }
  return fd;
}

static uint64_t num(const char* s) { return strtoull(s, NULL, 0); }

static void* aligned(size_t n) {
  void* p = NULL;
  if (posix_memalign(&p, 4096, n) != 0) exit(2);
  return p;
}

static int do_io(int write, const char* dev, uint64_t off, uint64_t len, uint64_t seed, int mode) {
  // mode: 0 pattern, 1 zeroes
  int fd = open_dev(dev, write ? O_WRONLY : O_RDONLY);
  uint64_t* buf = aligned(CHUNK);
  uint64_t* want = aligned(CHUNK);
  for (uint64_t done = 0; done < len;) {
    size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
    if (write) {
      fill_pattern(buf, seed, off + done, n);
      ssize_t w = pwrite(fd, buf, n, (off_t)(off + done));
      if (w != (ssize_t)n) {
        fprintf(stderr, "vdtool: write at %llu: %s\n", (unsigned long long)(off + done),
                w < 0 ? strerror(errno) : "short");
        return 1;
      }
    } else {
      ssize_t r = pread(fd, buf, n, (off_t)(off + done));
      if (r != (ssize_t)n) {
        fprintf(stderr, "vdtool: read at %llu: %s\n", (unsigned long long)(off + done),
                r < 0 ? strerror(errno) : "short");
        return 1;
      }
      if (mode == 0) fill_pattern(want, seed, off + done, n); else memset(want, 0, n);
      if (memcmp(buf, want, n) != 0) {
        for (size_t i = 0; i < n / 8; i++) {
          if (buf[i] != want[i]) {
            fprintf(stderr, "vdtool: mismatch at %llu\n", (unsigned long long)(off + done + i * 8));
            break;
          }
        }
        return 1;
      }
    }
    done += n;
  }
  if (write && fdatasync(fd) != 0) {
    fprintf(stderr, "vdtool: fdatasync: %s\n", strerror(errno));
    return 1;
  }
  close(fd);
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int do_rewrite(const char* dev, uint64_t off, uint64_t len, uint64_t seed, double seconds) {
  if (len == 0 || len > 64 * CHUNK) {
    fprintf(stderr, "vdtool: rewrite length must be 1..64 MiB\n");
    return 2;
  }
  int fd = open_dev(dev, O_WRONLY);
  uint64_t* buf = aligned(len);
  fill_pattern(buf, seed, off, len);
  unsigned long rounds = 0;
  for (double end = now() + seconds; now() < end; rounds++) {
    if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len || fdatasync(fd) != 0) {
      fprintf(stderr, "vdtool: rewrite at %llu: %s\n", (unsigned long long)off, strerror(errno));
      return 1;
    }
  }
  printf("%lu\n", rounds);
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: vdtool fill|check|zeroes|discard|zeroout|flush|size|sha <dev> ...\n");
    return 2;
  }
  const char* cmd = argv[1];
  const char* dev = argv[2];
  if (!strcmp(cmd, "fill") && argc == 6) return do_io(1, dev, num(argv[3]), num(argv[4]), num(argv[5]), 0);
  if (!strcmp(cmd, "check") && argc == 6) return do_io(0, dev, num(argv[3]), num(argv[4]), num(argv[5]), 0);
  if (!strcmp(cmd, "zeroes") && argc == 5) return do_io(0, dev, num(argv[3]), num(argv[4]), 0, 1);
  if ((!strcmp(cmd, "discard") || !strcmp(cmd, "zeroout")) && argc == 5) {
    int fd = open_dev(dev, O_WRONLY);
    uint64_t range[2] = {num(argv[3]), num(argv[4])};
    if (ioctl(fd, !strcmp(cmd, "discard") ? BLKDISCARD : BLKZEROOUT, range) != 0) {
      fprintf(stderr, "vdtool: %s: %s\n", cmd, strerror(errno));
      return 1;
    }
    close(fd);
    return 0;
  }
  if (!strcmp(cmd, "flush") && argc == 3) {
    int fd = open_dev(dev, O_WRONLY);
    if (fsync(fd) != 0) {
      fprintf(stderr, "vdtool: fsync: %s\n", strerror(errno));
      return 1;
    }
    close(fd);
    return 0;
  }
  if (!strcmp(cmd, "size") && argc == 3) {
    int fd = open(dev, O_RDONLY);
    uint64_t size = 0;
    if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) != 0) {
      fprintf(stderr, "vdtool: size: %s\n", strerror(errno));
      return 1;
    }
    printf("%llu\n", (unsigned long long)size);
    return 0;
  }
  if (!strcmp(cmd, "rewrite") && argc == 7)
    return do_rewrite(dev, num(argv[3]), num(argv[4]), num(argv[5]), atof(argv[6]));
  if (!strcmp(cmd, "sha") && argc == 5) {
    int fd = open_dev(dev, O_RDONLY);
    uint64_t off = num(argv[3]), len = num(argv[4]);
    unsigned char* buf = aligned(CHUNK);
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t done = 0; done < len;) {
      size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
      if (pread(fd, buf, n, (off_t)(off + done)) != (ssize_t)n) {
        fprintf(stderr, "vdtool: read: %s\n", strerror(errno));
        return 1;
      }
      for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
      done += n;
    }
    printf("%016llx\n", (unsigned long long)h);
    return 0;
  }
  fprintf(stderr, "vdtool: bad command or arguments\n");
  return 2;
}
