#include "backup/repo/manifest.h"

#include <zstd.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "backup/repo/codec.h"

namespace vdisk::backup {

namespace {

using nlohmann::json;

std::string EncodeChunkMap(const std::vector<ChunkRef>& chunks) {
  std::string bin;
  ByteWriter w(&bin);
  w.U32(static_cast<uint32_t>(chunks.size()));
  for (const auto& c : chunks) {
    w.U32(c.index);
    w.Bytes(c.id.view());
  }
  return Base64Encode(bin);
}

StatusOr<std::vector<ChunkRef>> DecodeChunkMap(const std::string& b64) {
  ASSIGN_OR_RETURN(std::string bin, Base64Decode(b64));
  ByteReader r(bin);
  uint32_t n = r.U32();
  if (!r.ok() || r.remaining() / 36 < n) return absl::DataLossError("chunk map is malformed");
  std::vector<ChunkRef> out(n);
  for (auto& c : out) {
    c.index = r.U32();
    std::string_view id = r.Bytes(32);
    std::memcpy(c.id.bytes.data(), id.data(), 32);
  }
  if (!r.ok()) return absl::DataLossError("chunk map is malformed");
  return out;
}

json ExtentsJson(const blockdev::ExtentList& e) {
  json a = json::array();
  for (const auto& x : e) a.push_back({x.offset, x.length});
  return a;
}

blockdev::ExtentList ExtentsFromJson(const json& a) {
  blockdev::ExtentList out;
  if (!a.is_array()) return out;
  for (const auto& x : a)
    if (x.is_array() && x.size() == 2) out.push_back({x[0].get<uint64_t>(), x[1].get<uint64_t>()});
  return out;
}

json StatsJson(const DiskStats& s) {
  return {{"bytes_read", s.bytes_read},       {"bytes_new", s.bytes_new},
          {"bytes_stored_new", s.bytes_stored_new}, {"chunks_new", s.chunks_new},
          {"chunks_reused", s.chunks_reused}, {"chunks_unchanged", s.chunks_unchanged},
          {"chunks_zero", s.chunks_zero}};
}

DiskStats StatsFromJson(const json& j) {
  DiskStats s;
  if (!j.is_object()) return s;
  s.bytes_read = j.value("bytes_read", 0ull);
  s.bytes_new = j.value("bytes_new", 0ull);
  s.bytes_stored_new = j.value("bytes_stored_new", 0ull);
  s.chunks_new = j.value("chunks_new", 0ull);
  s.chunks_reused = j.value("chunks_reused", 0ull);
  s.chunks_unchanged = j.value("chunks_unchanged", 0ull);
  s.chunks_zero = j.value("chunks_zero", 0ull);
  return s;
}

std::string IsoTime(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json DiskJson(const DiskBackup& d, bool with_chunks) {
  json j = {{"name", d.name},
            {"source", d.source},
            {"source_snapshot", d.source_snapshot},
            {"pool", d.pool},
            {"volume", d.volume},
            {"size_bytes", d.size_bytes},
            {"block_size", d.block_size},
            {"chunk_size", d.chunk_size},
            {"change_map", d.change_map},
            {"data_chunks", d.chunks.size()},
            {"data_bytes", d.data_bytes()},
            {"unallocated", ExtentsJson(d.unallocated)},
            {"stats", StatsJson(d.stats)}};
  if (with_chunks) j["chunk_map"] = EncodeChunkMap(d.chunks);
  return j;
}

}  // namespace

uint64_t DiskBackup::data_bytes() const {
  uint64_t total = 0;
  for (const auto& c : chunks) {
    uint64_t start = static_cast<uint64_t>(c.index) * chunk_size;
    if (start < size_bytes) total += std::min<uint64_t>(chunk_size, size_bytes - start);
  }
  return total;
}

const DiskBackup* Manifest::disk(const std::string& name) const {
  for (const auto& d : disks)
    if (d.name == name) return &d;
  return nullptr;
}

json ManifestToJson(const Manifest& m, bool with_chunks) {
  json j = {{"format", "vdisk-backup-manifest"},
            {"version", 1},
            {"id", m.id},
            {"group", m.group},
            {"parent", m.parent},
            {"hostname", m.hostname},
            {"started_unix", m.started_unix},
            {"finished_unix", m.finished_unix},
            {"started", IsoTime(m.started_unix)},
            {"finished", IsoTime(m.finished_unix)},
            {"tags", m.tags}};
  json disks = json::array();
  for (const auto& d : m.disks) disks.push_back(DiskJson(d, with_chunks));
  j["disks"] = disks;
  json kube = json::array();
  for (const auto& k : m.kubernetes) {
    json o = {{"file", k.file}, {"kind", k.kind}, {"name", k.name}, {"namespace", k.namespace_}};
    if (with_chunks) o["yaml"] = k.yaml;
    kube.push_back(o);
  }
  j["kubernetes"] = kube;
  return j;
}

std::string EncodeManifest(const RepoKeys& keys, const Manifest& m) {
  std::string text = ManifestToJson(m, true).dump();
  std::string compressed(ZSTD_compressBound(text.size()), '\0');
  size_t n = ZSTD_compress(compressed.data(), compressed.size(), text.data(), text.size(), 3);
  compressed.resize(ZSTD_isError(n) ? 0 : n);
  return Seal(keys.data_key, compressed, "vdisk-manifest-v1|" + m.id);
}

StatusOr<Manifest> DecodeManifest(const RepoKeys& keys, const std::string& id,
                                  std::string_view data) {
  auto compressed = Open(keys.data_key, data, "vdisk-manifest-v1|" + id);
  if (!compressed.ok())
    return absl::DataLossError(
        absl::StrCat("manifest ", id, ": ", compressed.status().message()));
  unsigned long long size = ZSTD_getFrameContentSize(compressed->data(), compressed->size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 32))
    return absl::DataLossError(absl::StrCat("manifest ", id, ": bad compression frame"));
  std::string text(size, '\0');
  size_t n = ZSTD_decompress(text.data(), text.size(), compressed->data(), compressed->size());
  if (ZSTD_isError(n) || n != size)
    return absl::DataLossError(absl::StrCat("manifest ", id, ": bad compressed data"));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "vdisk-backup-manifest")
    return absl::DataLossError(absl::StrCat("manifest ", id, ": not a manifest"));
  if (j.value("version", 0) != 1)
    return absl::FailedPreconditionError(absl::StrCat(
        "manifest ", id, ": version ", j.value("version", 0), " needs a newer vdisk"));
  Manifest m;
  m.id = j.value("id", "");
  if (m.id != id) return absl::DataLossError(absl::StrCat("manifest ", id, ": id mismatch"));
  m.group = j.value("group", "");
  m.parent = j.value("parent", "");
  m.hostname = j.value("hostname", "");
  m.started_unix = j.value("started_unix", int64_t{0});
  m.finished_unix = j.value("finished_unix", int64_t{0});
  if (j.contains("tags") && j["tags"].is_object())
    m.tags = j["tags"].get<std::map<std::string, std::string>>();
  for (const auto& dj : j.value("disks", json::array())) {
    DiskBackup d;
    d.name = dj.value("name", "");
    d.source = dj.value("source", "");
    d.source_snapshot = dj.value("source_snapshot", "");
    d.pool = dj.value("pool", "");
    d.volume = dj.value("volume", "");
    d.size_bytes = dj.value("size_bytes", 0ull);
    d.block_size = dj.value("block_size", 512u);
    d.chunk_size = dj.value("chunk_size", 0u);
    d.change_map = dj.value("change_map", "");
    ASSIGN_OR_RETURN(d.chunks, DecodeChunkMap(dj.value("chunk_map", "")));
    d.unallocated = ExtentsFromJson(dj.value("unallocated", json::array()));
    d.stats = StatsFromJson(dj.value("stats", json::object()));
    if (d.chunk_size == 0 || d.name.empty())
      return absl::DataLossError(absl::StrCat("manifest ", id, ": disk without name/chunk size"));
    m.disks.push_back(std::move(d));
  }
  for (const auto& kj : j.value("kubernetes", json::array())) {
    KubeObject k;
    k.file = kj.value("file", "");
    k.kind = kj.value("kind", "");
    k.name = kj.value("name", "");
    k.namespace_ = kj.value("namespace", "");
    k.yaml = kj.value("yaml", "");
    m.kubernetes.push_back(std::move(k));
  }
  return m;
}

std::string NewBackupId(int64_t unix_ms) {
  std::time_t tt = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  return absl::StrCat(buf, ".", absl::Dec(unix_ms % 1000, absl::kZeroPad3), "Z-", RandomHex(4));
}

}  // namespace vdisk::backup
