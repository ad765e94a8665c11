#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "blockdev/iscsi/target_manager.h"

namespace vdisk::blockdev::iscsi {

namespace {

class TgtadmManager final : public TargetManager {
 public:
  TgtadmManager(TargetHost host, int control) : host_(std::move(host)), control_(std::to_string(control)) {}

  StatusOr<std::vector<TargetInfo>> List() override {
    ASSIGN_OR_RETURN(std::string out, Adm({"--op", "show", "--mode", "target"}));
    return ParseTgtShow(out);
  }

  StatusOr<int> CreateTarget(const std::string& iqn) override {
    ASSIGN_OR_RETURN(auto targets, List());
    int tid = 1;
    for (const auto& t : targets) {
      if (t.iqn == iqn) return absl::AlreadyExistsError(absl::StrCat("target ", iqn, " exists (tid ", t.tid, ")"));
      tid = std::max(tid, t.tid + 1);
    }
    // Another pool on the same tgtd may take the same number between List() and here: step on.
    for (int attempt = 0; attempt < 64; ++attempt, ++tid) {
      auto r = Adm({"--op", "new", "--mode", "target", "--tid", std::to_string(tid), "--targetname", iqn});
      if (r.ok()) return tid;
      if (r.status().message().find("already exists") == std::string::npos) return r.status();
    }
    return absl::ResourceExhaustedError(absl::StrCat("no free target id for ", iqn));
  }

  Status DeleteTarget(int tid) override {
    auto r = Adm({"--op", "delete", "--mode", "target", "--tid", std::to_string(tid), "--force"});
    if (!r.ok() && r.status().message().find("can't find the target") != std::string::npos) return Status();
    return r.status();
  }

  Status AddLun(int tid, const LunSpec& l) override {
    const std::string t = std::to_string(tid), n = std::to_string(l.lun);
    RETURN_IF_ERROR(Adm({"--op", "new", "--mode", "logicalunit", "--tid", t, "--lun", n, "--bstype", "rdwr",
                         "--backing-store", l.backing})
                        .status());
    std::string params = absl::StrCat("thin_provisioning=", l.thin ? 1 : 0, ",readonly=", l.read_only ? 1 : 0);
    if (!l.serial.empty()) absl::StrAppend(&params, ",scsi_sn=", l.serial, ",scsi_id=", l.serial);
    if (!l.product.empty()) absl::StrAppend(&params, ",vendor_id=VDISK,product_id=", l.product);
    return Adm({"--op", "update", "--mode", "logicalunit", "--tid", t, "--lun", n, "--params", params}).status();
  }

  // tgt refuses to delete a LU while an initiator has commands on it ("this logical unit is still
  // active"); those finish within milliseconds, so the removal is retried for up to ~5 s.
  Status RemoveLun(int tid, int lun) override {
    Status s;
    for (int attempt = 0; attempt < 50; ++attempt) {
      s = Adm({"--op", "delete", "--mode", "logicalunit", "--tid", std::to_string(tid), "--lun", std::to_string(lun)})
              .status();
      if (s.ok() || s.message().find("still active") == std::string::npos) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return absl::UnavailableError(absl::StrCat("LUN ", lun, " of target ", tid, " stays busy: ", s.message()));
  }

  Status Allow(int tid, const std::string& initiator) override {
    return Adm({"--op", "bind", "--mode", "target", "--tid", std::to_string(tid), Flag(initiator), initiator}).status();
  }

  Status Disallow(int tid, const std::string& initiator) override {
    auto r = Adm({"--op", "unbind", "--mode", "target", "--tid", std::to_string(tid), Flag(initiator), initiator});
    if (!r.ok() && (r.status().message().find("can't find") != std::string::npos ||
                    r.status().message().find("not found") != std::string::npos))
      return Status();
    return r.status();
  }

  Status RequireChap(int tid, const Chap& chap) override {
    ASSIGN_OR_RETURN(std::string accounts, Adm({"--op", "show", "--mode", "account"}));
    bool exists = false;
    for (auto line : absl::StrSplit(accounts, '\n'))
      if (absl::StripAsciiWhitespace(line) == chap.user) exists = true;
    if (!exists) {
      // Words 8 is the password: never shown.
      RETURN_IF_ERROR(host_.Run({"tgtadm", "-C", control_, "--lld", "iscsi", "--op", "new", "--mode", "account",
                                 "--user", chap.user, "--password", chap.password},
                                "", {12})
                          .status());
    }
    return Adm({"--op", "bind", "--mode", "account", "--tid", std::to_string(tid), "--user", chap.user}).status();
  }

 private:
  static std::string Flag(const std::string& initiator) {
    return initiator == "ALL" || initiator.find_first_not_of("0123456789./:") == std::string::npos ? "--initiator-address"
                                                                                                     : "--initiator-name";
  }
  StatusOr<std::string> Adm(std::vector<std::string> args) {
    std::vector<std::string> words = {"tgtadm", "-C", control_, "--lld", "iscsi"};
    words.insert(words.end(), args.begin(), args.end());
    return host_.Run(words);
  }
  TargetHost host_;
  std::string control_;
};

int Indent(absl::string_view line) {
  int n = 0;
  while (n < static_cast<int>(line.size()) && line[n] == ' ') ++n;
  return n;
}

}  // namespace

std::unique_ptr<TargetManager> MakeTgtadmManager(TargetHost host, int control) {
  return std::make_unique<TgtadmManager>(std::move(host), control);
}

std::vector<TargetInfo> ParseTgtShow(const std::string& text) {
  std::vector<TargetInfo> out;
  enum class Section { kNone, kNexus, kLun, kAccount, kAcl } section = Section::kNone;
  int lun = -1;
  for (auto raw : absl::StrSplit(text, '\n')) {
    absl::string_view line = raw;
    const int indent = Indent(line);
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (s.empty()) continue;
    if (indent == 0 && absl::ConsumePrefix(&s, "Target ")) {
      auto colon = s.find(':');
      TargetInfo t;
      if (colon == absl::string_view::npos || !absl::SimpleAtoi(s.substr(0, colon), &t.tid)) continue;
      t.iqn = std::string(absl::StripAsciiWhitespace(s.substr(colon + 1)));
      out.push_back(std::move(t));
      section = Section::kNone;
      continue;
    }
    if (out.empty()) continue;
    TargetInfo& t = out.back();
    if (indent == 4) {
      section = s == "I_T nexus information:" ? Section::kNexus
                : s == "LUN information:"     ? Section::kLun
                : s == "Account information:" ? Section::kAccount
                : s == "ACL information:"     ? Section::kAcl
                                              : Section::kNone;
      continue;
    }
    switch (section) {
      case Section::kNexus:
        if (absl::ConsumePrefix(&s, "Initiator: ")) t.initiators.emplace_back(s.substr(0, s.find(' ')));
        break;
      case Section::kLun:
        if (absl::ConsumePrefix(&s, "LUN: ")) {
          if (!absl::SimpleAtoi(s, &lun)) lun = -1;
        } else if (absl::ConsumePrefix(&s, "Backing store path: ") && lun > 0) {
          t.luns.emplace_back(lun, std::string(s));
        }
        break;
      case Section::kAccount:
        if (indent == 8) t.accounts.emplace_back(s.substr(0, s.find(' ')));
        break;
      case Section::kAcl:
        if (indent == 8) t.acl.emplace_back(s);
        break;
      case Section::kNone:
        break;
    }
  }
  return out;
}

}  // namespace vdisk::blockdev::iscsi
