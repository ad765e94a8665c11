// `vdisk copy <src-uri> <dst-uri>` and `vdisk import <raw|qcow2 file> <dst-uri>`: the sparse copy
// engine (blockdev/copy.h) with a progress bar, --json output, Ctrl-C = cancel + resumable.
//
// A destination that is a plain file path (or file: URI) and does not exist yet is created
// sparse as "<dst>.partial" and renamed to its final name only when the copy has completed and
// been flushed; its checkpoint "<dst>.partial.ckpt" makes a re-run of the same command resume.
// qcow2 sources are read in place through `qemu-img map` (no temporary raw file); images that
// cannot be mapped (compressed, encrypted, backing file) are converted with `qemu-img convert`
// into a sparse temporary raw file first.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "blockdev/copy.h"
#include "blockdev/registry.h"
#include "blockdev/uring/mapped_device.h"
#include "blockdev/uring/uring_device.h"
#include "cli/cancel_signals.h"
#include "cli/commands.h"
#include "cli/csi_common.h"  // Die, HumanBytes
#include "common/fs.h"

namespace vdisk::cli {

namespace {

using blockdev::CopyOptions;
using blockdev::CopyProgress;
using blockdev::CopyResult;
using blockdev::Device;


std::string HumanDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

// Progress on stderr: a redrawn bar on a terminal, a line every few seconds otherwise.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled), tty_(::isatty(2)) {}
  void Update(const CopyProgress& p) {
    if (!enabled_) return;
    if (!tty_ && p.bytes_done < p.bytes_total && p.elapsed_s - last_line_ < 5) return;
    last_line_ = p.elapsed_s;
    const double frac = p.bytes_total ? double(p.bytes_done) / double(p.bytes_total) : 1;
    const double eta = p.rate_bytes_per_s > 0 ? double(p.bytes_total - p.bytes_done) / p.rate_bytes_per_s
                                              : NAN;
    constexpr int kWidth = 24;
    std::string bar(kWidth, ' ');
    for (int i = 0; i < int(frac * kWidth); ++i) bar[i] = '#';
    std::fprintf(stderr, "%s[%s] %5.1f%%  %s / %s  %s/s  read %s  written %s  ETA %s%s",
                 tty_ ? "\r" : "", bar.c_str(), frac * 100, HumanBytes(p.bytes_done).c_str(),
                 HumanBytes(p.bytes_total).c_str(), HumanBytes(p.rate_bytes_per_s).c_str(),
                 HumanBytes(p.bytes_read).c_str(), HumanBytes(p.bytes_written).c_str(),
                 HumanDuration(eta).c_str(), tty_ ? "\033[K" : "\n");
    std::fflush(stderr);
    drawn_ = true;
  }
  void Finish() {
    if (enabled_ && tty_ && drawn_) std::fputc('\n', stderr);
  }

 private:
  bool enabled_, tty_;
  bool drawn_ = false;
  double last_line_ = -100;
};

// The path behind a "file:" URI or a plain path; nullopt for other schemes.
std::optional<std::string> FilePathOf(const std::string& uri) {
  auto colon = uri.find(':');
  auto slash = uri.find('/');
  std::string rest = uri;
  if (colon != std::string::npos && colon > 0 && (slash == std::string::npos || colon < slash)) {
    if (uri.substr(0, colon) != "file") return std::nullopt;
    rest = uri.substr(colon + 1);
    if (rest.starts_with("//")) rest = rest.substr(2);
  }
  auto parsed = blockdev::uring::ParseFileUri(rest, false);
  if (!parsed.ok()) Die(std::string(parsed.status().message()), 2);
  return parsed->first;
}

struct CopyFlags {
  unsigned queue_depth = 32;
  std::string chunk = "1M";
  bool checksum = false;
  bool no_discard = false;
  bool no_flush = false;
  std::string checkpoint;
  bool json = false;
  bool quiet = false;
};

uint64_t ParseSize(const std::string& s, const char* what) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    Die(absl::StrCat("bad ", what, " '", s, "'"), 2);
  }
  std::string unit = s.substr(pos);
  uint64_t mult = 1;
  if (unit == "" || unit == "b" || unit == "B") mult = 1;
  else if (unit == "k" || unit == "K" || unit == "KiB") mult = 1ull << 10;
  else if (unit == "m" || unit == "M" || unit == "MiB") mult = 1ull << 20;
  else if (unit == "g" || unit == "G" || unit == "GiB") mult = 1ull << 30;
  else if (unit == "t" || unit == "T" || unit == "TiB") mult = 1ull << 40;
  else Die(absl::StrCat("bad ", what, " unit in '", s, "' (use K, M, G, T)"), 2);
  if (v < 0) Die(absl::StrCat("bad ", what, " '", s, "'"), 2);
  return static_cast<uint64_t>(v * double(mult));
}

void AddCopyFlags(CLI::App* cmd, CopyFlags& f) {
  cmd->add_option("--queue-depth", f.queue_depth, "Chunks in flight (memory = depth x chunk)")
      ->capture_default_str();
  cmd->add_option("--chunk", f.chunk, "Chunk size (e.g. 1M)")->capture_default_str();
  cmd->add_flag("--checksum", f.checksum, "Print the SHA-256 of the source's logical content");
  cmd->add_flag("--no-discard", f.no_discard,
                "Leave destination ranges alone where the source has holes (destination known empty)");
  cmd->add_flag("--no-flush", f.no_flush, "Skip the final flush of the destination");
  cmd->add_option("--checkpoint", f.checkpoint,
                  "Checkpoint file: a re-run with the same file resumes (default for new files: "
                  "<dst>.partial.ckpt)");
  cmd->add_flag("--json", f.json, "Print the result as one JSON object on stdout");
  cmd->add_flag("-q,--quiet", f.quiet, "No progress output");
}

// Copies `src` to `dst_uri` (see the file comment for new-file destinations) and reports.
void RunCopy(Device& src, const std::string& src_label, const std::string& dst_uri,
             const CopyFlags& f, const std::string& extra_json_key = "",
             const std::string& extra_json_value = "") {
  blockdev::RegisterBuiltinBackends();
  std::optional<std::string> dst_path = FilePathOf(dst_uri);
  std::unique_ptr<Device> dst;
  std::string partial;
  CopyOptions o;
  o.checkpoint_path = f.checkpoint;
  if (dst_path && !std::filesystem::exists(*dst_path)) {
    partial = *dst_path + ".partial";
    if (o.checkpoint_path.empty()) o.checkpoint_path = partial + ".ckpt";
    if (std::filesystem::exists(partial) && !std::filesystem::exists(o.checkpoint_path)) {
      // An earlier run stopped (killed) before it recorded any progress: nothing of it can be
      // trusted or reused, so start over (found by tests/crash: a copy killed in its first
      // milliseconds could not be re-run without removing the file by hand).
      std::cerr << "vdisk copy: " << partial << " has no checkpoint (an earlier run stopped "
                << "before recording progress); starting over\n";
      std::error_code ec;
      std::filesystem::remove(partial, ec);
      if (ec) Die(absl::StrCat("removing ", partial, ": ", ec.message()), 1);
    }
    auto parsed = blockdev::uring::ParseFileUri(
        dst_uri.starts_with("file:") ? dst_uri.substr(dst_uri.find(':') + 1) : dst_uri, false);
    blockdev::uring::FileDeviceOptions fo = parsed->second;
    fo.create = true;
    fo.create_size = src.size();
    auto d = blockdev::uring::OpenFileDevice(partial, fo);
    if (!d.ok()) Die(std::string(d.status().message()));
    dst = std::move(*d);
  } else {
    auto d = blockdev::OpenDeviceUri(dst_uri, false);
    if (!d.ok()) Die(std::string(d.status().message()));
    dst = std::move(*d);
  }
  o.queue_depth = f.queue_depth;
  const uint64_t chunk = ParseSize(f.chunk, "--chunk");
  if (chunk == 0 || chunk > (256u << 20)) Die("--chunk must be 4K..256M", 2);
  o.chunk_bytes = static_cast<uint32_t>(chunk);
  o.checksum = f.checksum;
  o.discard_holes = !f.no_discard;
  o.flush_at_end = !f.no_flush;
  CancelOnSignals stop("vdisk copy");
  o.cancel = stop.flag();
  ProgressBar bar(!f.quiet && (!f.json || ::isatty(2)));
  o.progress = [&bar](const CopyProgress& p) { bar.Update(p); };

  const auto t0 = std::chrono::steady_clock::now();
  auto r = blockdev::CopyDevice(src, *dst, o);
  bar.Finish();
  if (!r.ok()) {
    std::string hint;
    if (!o.checkpoint_path.empty() && std::filesystem::exists(o.checkpoint_path))
      hint = "; re-run the same command to resume";
    Die(absl::StrCat("copy ", src_label, " -> ", dst_uri, " failed: ", r.status().ToString(), hint));
  }
  dst.reset();
  if (!partial.empty()) {
    std::error_code ec;
    std::filesystem::rename(partial, *dst_path, ec);
    if (ec) Die(absl::StrCat("rename ", partial, " -> ", *dst_path, ": ", ec.message()));
    (void)fs::SyncDir(std::filesystem::path(*dst_path).parent_path().empty()
                          ? "."
                          : std::filesystem::path(*dst_path).parent_path().string());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t total = src.size();
  if (f.json) {
    nlohmann::json j = {{"source", src_label},
                        {"destination", dst_uri},
                        {"bytes_total", total},
                        {"bytes_read", r->bytes_read},
                        {"bytes_written", r->bytes_written},
                        {"bytes_zero", r->bytes_zero},
                        {"bytes_discarded", r->bytes_discarded},
                        {"seconds", secs},
                        {"rate_bytes_per_s", secs > 0 ? double(total) / secs : 0.0},
                        {"resumed", r->resumed},
                        {"resumed_from", r->resumed_from}};
    if (f.checksum) j["sha256"] = r->sha256_hex;
    if (!extra_json_key.empty()) j[extra_json_key] = extra_json_value;
    std::cout << j.dump() << std::endl;
  } else if (!f.quiet) {
    std::cout << "copied " << src_label << " -> " << dst_uri << ": " << HumanBytes(total)
              << " in " << secs << " s (read " << HumanBytes(r->bytes_read) << ", wrote "
              << HumanBytes(r->bytes_written) << ", zero " << HumanBytes(r->bytes_zero)
              << ", discarded " << HumanBytes(r->bytes_discarded) << ")"
              << (r->resumed ? absl::StrCat(", resumed at ", r->resumed_from) : std::string())
              << "\n";
    if (f.checksum) std::cout << "sha256 " << r->sha256_hex << "\n";
  }
}

bool IsQcow2(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  unsigned char magic[4] = {};
  ssize_t n = ::pread(fd, magic, 4, 0);
  ::close(fd);
  return n == 4 && magic[0] == 'Q' && magic[1] == 'F' && magic[2] == 'I' && magic[3] == 0xfb;
}

void Import(const std::string& image, const std::string& dst_uri, const std::string& format,
            const CopyFlags& f) {
  std::string fmt = format;
  if (fmt == "auto") fmt = IsQcow2(image) ? "qcow2" : "raw";
  if (fmt == "raw") {
    auto src = blockdev::uring::OpenFileDevice(image, {.read_only = true});
    if (!src.ok()) Die(std::string(src.status().message()));
    return RunCopy(**src, image, dst_uri, f, "format", "raw");
  }
  if (fmt != "qcow2") Die("--format must be auto, raw or qcow2", 2);
  auto mapped = blockdev::uring::OpenQcow2Mapped(image);
  if (mapped.ok()) return RunCopy(**mapped, image, dst_uri, f, "format", "qcow2 (mapped)");
  if (mapped.status().code() != absl::StatusCode::kUnimplemented)
    Die(std::string(mapped.status().message()));
  // Not mappable in place: let qemu-img convert into a sparse temporary raw file, then copy.
  if (!f.quiet && !f.json)
    std::cerr << "vdisk: " << mapped.status().message() << ": converting with qemu-img first\n";
  std::optional<std::string> dst_path = FilePathOf(dst_uri);
  std::string dir = dst_path ? std::filesystem::path(*dst_path).parent_path().string()
                             : std::filesystem::temp_directory_path().string();
  if (dir.empty()) dir = ".";
  std::string tmp = dir + "/.vdisk-import-XXXXXX";
  int tfd = ::mkstemp(tmp.data());
  if (tfd < 0) Die(absl::StrCat("mkstemp in ", dir, ": ", std::strerror(errno)));
  ::close(tfd);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execlp("qemu-img", "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", "-S", "4k",
             image.c_str(), tmp.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ::unlink(tmp.c_str());
    Die(absl::StrCat("qemu-img convert of ", image, " failed"));
  }
  struct Cleanup {
    std::string path;
    ~Cleanup() { ::unlink(path.c_str()); }
  } cleanup{tmp};
  auto src = blockdev::uring::OpenFileDevice(tmp, {.read_only = true});
  if (!src.ok()) Die(std::string(src.status().message()));
  RunCopy(**src, image, dst_uri, f, "format", "qcow2 (converted)");
}

}  // namespace

void AddCopyCommands(CLI::App& app) {
  auto* copy = app.add_subcommand(
      "copy", "Sparse copy of one device to another (files, block devices, any device URI)");
  static CopyFlags copy_flags;
  static std::string src_uri, dst_uri;
  copy->add_option("source", src_uri, "Source device URI or path")->required();
  copy->add_option("destination", dst_uri,
                   "Destination device URI or path (a new file is created sparse)")
      ->required();
  AddCopyFlags(copy, copy_flags);
  copy->callback([] {
    blockdev::RegisterBuiltinBackends();
    auto src = blockdev::OpenDeviceUri(src_uri, /*read_only=*/true);
    if (!src.ok()) Die(std::string(src.status().message()));
    RunCopy(**src, src_uri, dst_uri, copy_flags);
  });

  auto* import = app.add_subcommand(
      "import", "Import a raw or qcow2 image file into a device / new file, sparse");
  static CopyFlags import_flags;
  static std::string image, import_dst, format = "auto";
  import->add_option("image", image, "Raw or qcow2 image file")->required();
  import->add_option("destination", import_dst, "Destination device URI or path")->required();
  import->add_option("--format", format, "auto|raw|qcow2")->capture_default_str();
  AddCopyFlags(import, import_flags);
  import->callback([] { Import(image, import_dst, format, import_flags); });
}

}  // namespace vdisk::cli
