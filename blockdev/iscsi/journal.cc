#include "blockdev/iscsi/journal.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::iscsi {

namespace {

using nlohmann::json;
constexpr int kFormat = 1;

const char* StateName(RecordState s) {
  switch (s) {
    case RecordState::kCreating: return "creating";
    case RecordState::kPending: return "pending";
    case RecordState::kReady: return "ready";
    case RecordState::kDeleting: return "deleting";
  }
  return "creating";
}

StatusOr<RecordState> ParseState(const std::string& s) {
  for (RecordState r : {RecordState::kCreating, RecordState::kPending, RecordState::kReady, RecordState::kDeleting})
    if (s == StateName(r)) return r;
  return absl::InvalidArgumentError(absl::StrCat("journal: unknown state '", s, "'"));
}

json VolumeJson(const VolumeRecord& v) {
  json j;
  j["id"] = v.id;
  j["name"] = v.name;
  j["size_bytes"] = v.size_bytes;
  j["mode"] = std::string(ToString(v.mode));
  json modes = json::array();
  for (AccessMode m : v.access_modes) modes.push_back(std::string(ToString(m)));
  j["access_modes"] = modes;
  j["params"] = v.params;
  j["source_kind"] = std::string(ToString(v.source.kind));
  j["source_id"] = v.source.id;
  j["state"] = StateName(v.state);
  j["created_unix_ns"] = v.created_unix_ns;
  j["published"] = v.published;
  if (v.chap.enabled()) {
    j["chap"] = {{"user", v.chap.user}, {"password", v.chap.password}};
    if (!v.chap.target_user.empty()) {
      j["chap"]["target_user"] = v.chap.target_user;
      j["chap"]["target_password"] = v.chap.target_password;
    }
  }
  return j;
}

StatusOr<VolumeRecord> VolumeFromJson(const json& j) {
  VolumeRecord v;
  v.id = j.value("id", "");
  v.name = j.value("name", "");
  v.size_bytes = j.value("size_bytes", uint64_t{0});
  ASSIGN_OR_RETURN(v.mode, ParseVolumeMode(j.value("mode", "block")));
  for (const auto& m : j.value("access_modes", std::vector<std::string>{})) {
    ASSIGN_OR_RETURN(AccessMode a, ParseAccessMode(m));
    v.access_modes.push_back(a);
  }
  v.params = j.value("params", Params{});
  ASSIGN_OR_RETURN(v.source.kind, ParseSourceKind(j.value("source_kind", "none")));
  v.source.id = j.value("source_id", "");
  ASSIGN_OR_RETURN(v.state, ParseState(j.value("state", "")));
  v.created_unix_ns = j.value("created_unix_ns", int64_t{0});
  v.published = j.value("published", std::set<std::string>{});
  if (auto c = j.find("chap"); c != j.end() && c->is_object()) {
    v.chap.user = c->value("user", "");
    v.chap.password = c->value("password", "");
    v.chap.target_user = c->value("target_user", "");
    v.chap.target_password = c->value("target_password", "");
  }
  if (v.id.empty()) return absl::InvalidArgumentError("journal: a volume without an id");
  return v;
}

}  // namespace

std::string EncodeJournal(const JournalState& state) {
  json j;
  j["format"] = kFormat;
  j["volumes"] = json::array();
  for (const auto& [id, v] : state.volumes) j["volumes"].push_back(VolumeJson(v));
  j["snapshots"] = json::array();
  for (const auto& [id, s] : state.snapshots)
    j["snapshots"].push_back({{"id", s.id},
                              {"name", s.name},
                              {"source_volume_id", s.source_volume_id},
                              {"size_bytes", s.size_bytes},
                              {"state", StateName(s.state)},
                              {"created_unix_ns", s.created_unix_ns}});
  return j.dump(1);
}

StatusOr<JournalState> DecodeJournal(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != kFormat)
    return absl::InvalidArgumentError(absl::StrCat("journal: not a format-", kFormat, " vdisk iSCSI pool journal"));
  JournalState state;
  try {
    for (const auto& v : j.value("volumes", json::array())) {
      ASSIGN_OR_RETURN(VolumeRecord r, VolumeFromJson(v));
      state.volumes[r.id] = std::move(r);
    }
    for (const auto& s : j.value("snapshots", json::array())) {
      SnapshotRecord r;
      r.id = s.value("id", "");
      r.name = s.value("name", "");
      r.source_volume_id = s.value("source_volume_id", "");
      r.size_bytes = s.value("size_bytes", uint64_t{0});
      ASSIGN_OR_RETURN(r.state, ParseState(s.value("state", "")));
      r.created_unix_ns = s.value("created_unix_ns", int64_t{0});
      if (r.id.empty()) return absl::InvalidArgumentError("journal: a snapshot without an id");
      state.snapshots[r.id] = std::move(r);
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("journal: malformed record: ", e.what()));
  }
  return state;
}

StatusOr<JournalState> Journal::Load() const {
  ASSIGN_OR_RETURN(auto text, host_->ReadFile(path_));
  if (!text) return JournalState{};
  auto state = DecodeJournal(*text);
  if (!state.ok()) return Annotate(state.status(), path_);
  return state;
}

Status Journal::Store(const JournalState& state) const { return host_->WriteFileAtomic(path_, EncodeJournal(state)); }

}  // namespace vdisk::blockdev::iscsi
