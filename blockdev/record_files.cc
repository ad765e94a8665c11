#include "blockdev/record_files.h"

#include <random>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vdisk::blockdev {

namespace {
bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}
}  // namespace

Status ValidateId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("empty id");
  if (id.size() > kMaxIdBytes)
    return absl::InvalidArgumentError(absl::StrCat("id longer than ", kMaxIdBytes, " bytes"));
  if (id == "." || id == "..") return absl::InvalidArgumentError("id may not be '.' or '..'");
  for (char c : id)
    if (!IsIdChar(c))
      return absl::InvalidArgumentError(
          absl::StrCat("id '", absl::CHexEscape(id), "' has characters outside [A-Za-z0-9._-]"));
  return Status();
}

Status ValidateName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name is empty");
  if (name.size() > kMaxNameBytes)
    return absl::InvalidArgumentError(absl::StrCat("name longer than ", kMaxNameBytes, " bytes"));
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return absl::InvalidArgumentError("name contains a control character");
  return Status();
}

std::string NewId(const std::string& name) {
  std::string prefix;
  for (char c : name) {
    if (prefix.size() >= 32) break;
    prefix += IsIdChar(c) && c != '.' ? c : '_';
  }
  if (prefix.empty()) prefix.push_back('v');  // (not = "v": GCC 12 -Wrestrict false positive)
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(prefix, "-", absl::StrFormat("%012x", rng() & 0xffffffffffffULL));
}

namespace {
using nlohmann::json;

Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("metadata: ", what));
}

// Typed field readers that never throw.
StatusOr<std::string> GetString(const json& j, const char* key, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Bad(absl::StrCat("missing '", key, "'"));
    return std::string();
  }
  if (!it->is_string()) return Bad(absl::StrCat("'", key, "' is not a string"));
  return it->get<std::string>();
}

StatusOr<uint64_t> GetU64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned())
    return Bad(absl::StrCat("'", key, "' missing or not an unsigned number"));
  return it->get<uint64_t>();
}

StatusOr<int64_t> GetI64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer())
    return Bad(absl::StrCat("'", key, "' missing or not an integer"));
  return it->get<int64_t>();
}

StatusOr<bool> GetBool(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  if (it == j.end()) return dflt;
  if (!it->is_boolean()) return Bad(absl::StrCat("'", key, "' is not a boolean"));
  return it->get<bool>();
}

StatusOr<Params> GetParams(const json& j, const char* key) {
  Params out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_object()) return Bad(absl::StrCat("'", key, "' is not an object"));
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (!kv.value().is_string()) return Bad(absl::StrCat("'", key, ".", kv.key(), "' not a string"));
    out[kv.key()] = kv.value().get<std::string>();
  }
  return out;
}

StatusOr<json> Parse(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("not a JSON object");
  auto fmt = j.find("format");
  if (fmt == j.end() || !fmt->is_number_integer() || fmt->get<int>() != kRecordFormat)
    return Bad(absl::StrCat("unsupported format (want ", kRecordFormat, ")"));
  return j;
}

}  // namespace

std::string EncodeVolume(const Volume& v) {
  json j;
  j["format"] = kRecordFormat;
  j["id"] = v.id;
  j["name"] = v.name;
  j["size_bytes"] = v.size_bytes;
  j["mode"] = std::string(ToString(v.mode));
  json modes = json::array();
  for (AccessMode m : v.access_modes) modes.push_back(std::string(ToString(m)));
  j["access_modes"] = modes;
  j["params"] = v.params;
  j["source"] = {{"kind", std::string(ToString(v.source.kind))}, {"id", v.source.id}};
  j["pending"] = v.pending;
  j["created_unix_ns"] = v.created_unix_ns;
  j["context"] = v.context;
  if (!v.mutable_params.empty()) j["mutable_params"] = v.mutable_params;
  return j.dump(2) + "\n";
}

StatusOr<Volume> DecodeVolume(const std::string& text) {
  ASSIGN_OR_RETURN(json j, Parse(text));
  Volume v;
  ASSIGN_OR_RETURN(v.id, GetString(j, "id"));
  RETURN_IF_ERROR(ValidateId(v.id));
  ASSIGN_OR_RETURN(v.name, GetString(j, "name"));
  ASSIGN_OR_RETURN(v.size_bytes, GetU64(j, "size_bytes"));
  ASSIGN_OR_RETURN(std::string mode, GetString(j, "mode"));
  ASSIGN_OR_RETURN(v.mode, ParseVolumeMode(mode));
  auto am = j.find("access_modes");
  if (am != j.end()) {
    if (!am->is_array()) return Bad("'access_modes' is not an array");
    for (const auto& e : *am) {
      if (!e.is_string()) return Bad("access mode is not a string");
      ASSIGN_OR_RETURN(AccessMode m, ParseAccessMode(e.get<std::string>()));
      v.access_modes.push_back(m);
    }
  }
  ASSIGN_OR_RETURN(v.params, GetParams(j, "params"));
  ASSIGN_OR_RETURN(v.context, GetParams(j, "context"));
  ASSIGN_OR_RETURN(v.mutable_params, GetParams(j, "mutable_params"));
  auto src = j.find("source");
  if (src != j.end()) {
    if (!src->is_object()) return Bad("'source' is not an object");
    ASSIGN_OR_RETURN(std::string kind, GetString(*src, "kind"));
    ASSIGN_OR_RETURN(v.source.id, GetString(*src, "id", false));
    auto parsed = ParseSourceKind(kind);
    if (!parsed.ok()) return Bad(absl::StrCat("unknown source kind '", kind, "'"));
    v.source.kind = *parsed;
  }
  ASSIGN_OR_RETURN(v.pending, GetBool(j, "pending", false));
  ASSIGN_OR_RETURN(v.created_unix_ns, GetI64(j, "created_unix_ns"));
  return v;
}

std::string EncodeSnapshot(const Snapshot& s) {
  json j;
  j["format"] = kRecordFormat;
  j["id"] = s.id;
  j["name"] = s.name;
  j["source_volume_id"] = s.source_volume_id;
  j["size_bytes"] = s.size_bytes;
  j["created_unix_ns"] = s.created_unix_ns;
  j["ready"] = s.ready;
  return j.dump(2) + "\n";
}

StatusOr<Snapshot> DecodeSnapshot(const std::string& text) {
  ASSIGN_OR_RETURN(json j, Parse(text));
  Snapshot s;
  ASSIGN_OR_RETURN(s.id, GetString(j, "id"));
  RETURN_IF_ERROR(ValidateId(s.id));
  ASSIGN_OR_RETURN(s.name, GetString(j, "name"));
  ASSIGN_OR_RETURN(s.source_volume_id, GetString(j, "source_volume_id"));
  ASSIGN_OR_RETURN(s.size_bytes, GetU64(j, "size_bytes"));
  ASSIGN_OR_RETURN(s.created_unix_ns, GetI64(j, "created_unix_ns"));
  ASSIGN_OR_RETURN(s.ready, GetBool(j, "ready", true));
  return s;
}

}  // namespace vdisk::blockdev
