#include "blockdev/iscsi/target_host.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/subprocess.h"

namespace vdisk::blockdev::iscsi {

namespace {

Status ErrorFrom(const ProcessResult& r, const std::string& shown) {
  std::string err = r.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (err.size() > 600) err = err.substr(0, 600) + "...";
  const std::string msg = absl::StrCat("`", shown, "` failed (",
                                       r.signal ? absl::StrCat("signal ", r.signal) : absl::StrCat("exit ", r.exit_code),
                                       ")", err.empty() ? "" : ": " + err);
  if (err.find("No space left") != std::string::npos) return absl::ResourceExhaustedError(msg);
  if (err.find("No such file") != std::string::npos) return absl::NotFoundError(msg);
  if (err.find("File exists") != std::string::npos) return absl::AlreadyExistsError(msg);
  if (err.find("not supported") != std::string::npos || err.find("Invalid cross-device") != std::string::npos)
    return absl::UnimplementedError(msg);
  if (r.exit_code == 255) return absl::UnavailableError(msg);  // ssh: cannot reach the host
  return absl::InternalError(msg);
}

}  // namespace

std::vector<std::string> TargetHost::ParsePrefix(const std::string& spec) {
  if (spec.empty() || spec == "local") return {"/bin/sh", "-c"};
  return absl::StrSplit(spec, ' ', absl::SkipEmpty());
}

StatusOr<std::string> TargetHost::Exec(const std::string& line, const std::string& shown,
                                       const std::string& stdin_data) const {
  std::vector<std::string> argv = prefix_;
  argv.push_back(line);
  auto r = RunProcess(argv, stdin_data, timeout_ms_);
  if (!r.ok()) return Annotate(r.status(), absl::StrCat("running `", shown, "`"));
  if (!r->ok()) return ErrorFrom(*r, shown);
  return std::move(r->out);
}

StatusOr<std::string> TargetHost::Run(const std::vector<std::string>& words, const std::string& stdin_data,
                                      const std::set<size_t>& secret) const {
  std::string line, shown;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i) {
      line += ' ';
      shown += ' ';
    }
    line += ShellQuote(words[i]);
    shown += secret.count(i) ? "***" : words[i];
  }
  return Exec(line, shown, stdin_data);
}

StatusOr<std::string> TargetHost::RunScript(const std::string& script, const std::string& stdin_data) const {
  return Exec(script, script, stdin_data);
}

Status TargetHost::MakeDirs(const std::string& dir) const { return Run({"mkdir", "-p", "--", dir}).status(); }

Status TargetHost::WriteFileAtomic(const std::string& path, const std::string& content) const {
  const std::string tmp = path + ".tmp";
  const std::string dir = path.substr(0, path.find_last_of('/'));
  const std::string script = absl::StrCat("umask 077 && cat > ", ShellQuote(tmp), " && sync ", ShellQuote(tmp),
                                          " && mv -f ", ShellQuote(tmp), " ", ShellQuote(path), " && sync ",
                                          ShellQuote(dir.empty() ? "/" : dir));
  return Exec(script, absl::StrCat("write ", path), content).status();
}

StatusOr<std::optional<std::string>> TargetHost::ReadFile(const std::string& path) const {
  // Exit 3 marks "missing" (cat's own failures exit 1).
  const std::string script =
      absl::StrCat("if [ -e ", ShellQuote(path), " ]; then cat ", ShellQuote(path), "; else exit 3; fi");
  std::vector<std::string> argv = prefix_;
  argv.push_back(script);
  auto r = RunProcess(argv, "", timeout_ms_);
  if (!r.ok()) return r.status();
  if (r->exit_code == 3) return std::optional<std::string>();
  if (!r->ok()) return ErrorFrom(*r, "cat " + path);
  return std::optional<std::string>(std::move(r->out));
}

Status TargetHost::CreateFile(const std::string& path, uint64_t size, bool preallocate) const {
  const std::string q = ShellQuote(path);
  std::string script = absl::StrCat("set -e; if [ -e ", q, " ]; then echo 'File exists' >&2; exit 1; fi; truncate -s ",
                                    size, " ", q);
  if (preallocate) absl::StrAppend(&script, " && { fallocate -l ", size, " ", q, " || { rm -f ", q, "; exit 1; }; }");
  return Exec(script, absl::StrCat("create ", path, " (", size, " bytes", preallocate ? ", preallocated" : "", ")"), "")
      .status();
}

Status TargetHost::Resize(const std::string& path, uint64_t size) const {
  return Run({"truncate", "-s", std::to_string(size), "--", path}).status();
}

Status TargetHost::Reflink(const std::string& from, const std::string& to) const {
  return Run({"cp", "--reflink=always", "--", from, to}).status();
}

Status TargetHost::CopySparse(const std::string& from, const std::string& to) const {
  const std::string script = absl::StrCat("cp --reflink=never --sparse=always -- ", ShellQuote(from), " ",
                                          ShellQuote(to), " && sync ", ShellQuote(to));
  return Exec(script, absl::StrCat("cp --sparse=always ", from, " ", to), "").status();
}

Status TargetHost::Remove(const std::string& path) const { return Run({"rm", "-f", "--", path}).status(); }

StatusOr<std::vector<std::string>> TargetHost::List(const std::string& dir, const std::string& suffix) const {
  const std::string script = absl::StrCat("[ -d ", ShellQuote(dir), " ] || exit 0; ls -1 -- ", ShellQuote(dir));
  ASSIGN_OR_RETURN(std::string out, Exec(script, "ls " + dir, ""));
  std::vector<std::string> names;
  for (auto line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::string n(line);
    if (n.size() > suffix.size() && n.ends_with(suffix)) names.push_back(n.substr(0, n.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

StatusOr<TargetHost::FsSpace> TargetHost::Space(const std::string& dir) const {
  ASSIGN_OR_RETURN(std::string out, Run({"stat", "-f", "-c", "%S %b %a", "--", dir}));
  std::vector<std::string> f = absl::StrSplit(out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  uint64_t bs = 0, blocks = 0, avail = 0;
  if (f.size() != 3 || !absl::SimpleAtoi(f[0], &bs) || !absl::SimpleAtoi(f[1], &blocks) ||
      !absl::SimpleAtoi(f[2], &avail))
    return absl::InternalError(absl::StrCat("stat -f ", dir, ": unexpected output '", out, "'"));
  return FsSpace{bs * blocks, bs * avail};
}

StatusOr<bool> TargetHost::ProbeReflink(const std::string& dir) const {
  const std::string a = dir + "/.vdisk-reflink-probe", b = a + ".clone";
  const std::string script =
      absl::StrCat("rm -f ", ShellQuote(a), " ", ShellQuote(b), "; printf x > ", ShellQuote(a),
                   " && if cp --reflink=always -- ", ShellQuote(a), " ", ShellQuote(b),
                   " 2>/dev/null; then r=yes; else r=no; fi; rm -f ", ShellQuote(a), " ", ShellQuote(b), "; echo $r");
  ASSIGN_OR_RETURN(std::string out, Exec(script, "reflink probe in " + dir, ""));
  return out.starts_with("yes");
}

}  // namespace vdisk::blockdev::iscsi
