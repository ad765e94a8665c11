#include "backup/repo/pack_format.h"

#include "absl/strings/str_cat.h"
#include "backup/repo/codec.h"

namespace vdisk::backup {

namespace {

constexpr std::string_view kPackMagic = "VDPACK01";
constexpr std::string_view kIndexMagic = "VDIDX001";
constexpr size_t kEntryBytes = 32 + 8 + 4 + 4;

void PutEntries(ByteWriter& w, const std::vector<PackEntry>& entries) {
  w.U32(static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    w.Bytes(e.id.view());
    w.U64(e.offset);
    w.U32(e.length);
    w.U32(e.raw_length);
  }
}

bool GetEntries(ByteReader& r, std::vector<PackEntry>* out) {
  uint32_t n = r.U32();
  if (!r.ok() || r.remaining() / kEntryBytes < n) return false;
  out->resize(n);
  for (auto& e : *out) {
    std::string_view id = r.Bytes(32);
    if (!r.ok()) return false;
    std::memcpy(e.id.bytes.data(), id.data(), 32);
    e.offset = r.U64();
    e.length = r.U32();
    e.raw_length = r.U32();
  }
  return r.ok();
}

}  // namespace

std::string EncodePackTail(const RepoKeys& keys, const std::string& pack_name,
                           const std::vector<PackEntry>& entries) {
  std::string plain;
  ByteWriter w(&plain);
  PutEntries(w, entries);
  std::string out = Seal(keys.data_key, plain, "vdisk-pack-trailer-v1|" + pack_name);
  const uint32_t trailer_len = static_cast<uint32_t>(out.size());
  ByteWriter f(&out);
  f.U32(trailer_len);
  f.Bytes(kPackMagic);
  return out;
}

StatusOr<uint32_t> ParsePackFooter(std::string_view footer) {
  if (footer.size() != kPackFooterBytes || footer.substr(4) != kPackMagic)
    return absl::DataLossError("not a vdisk pack (bad footer)");
  ByteReader r(footer);
  return r.U32();
}

StatusOr<std::vector<PackEntry>> DecodePackTrailer(const RepoKeys& keys,
                                                   const std::string& pack_name,
                                                   std::string_view sealed_trailer) {
  ASSIGN_OR_RETURN(std::string plain,
                   Open(keys.data_key, sealed_trailer, "vdisk-pack-trailer-v1|" + pack_name));
  ByteReader r(plain);
  std::vector<PackEntry> entries;
  if (!GetEntries(r, &entries)) return absl::DataLossError("pack trailer is malformed");
  return entries;
}

std::string EncodeIndex(const RepoKeys& keys, const std::string& index_name,
                        const std::vector<PackRecord>& packs) {
  std::string plain;
  ByteWriter w(&plain);
  w.Bytes(kIndexMagic);
  w.U32(static_cast<uint32_t>(packs.size()));
  for (const auto& p : packs) {
    w.Str16(p.name);
    w.U64(p.size);
    PutEntries(w, p.entries);
  }
  return Seal(keys.data_key, plain, "vdisk-index-v1|" + index_name);
}

StatusOr<std::vector<PackRecord>> DecodeIndex(const RepoKeys& keys, const std::string& index_name,
                                              std::string_view data) {
  auto plain = Open(keys.data_key, data, "vdisk-index-v1|" + index_name);
  if (!plain.ok())
    return absl::DataLossError(absl::StrCat("index ", index_name, ": ", plain.status().message()));
  ByteReader r(*plain);
  if (r.Bytes(kIndexMagic.size()) != kIndexMagic)
    return absl::DataLossError(absl::StrCat("index ", index_name, ": bad magic"));
  uint32_t n = r.U32();
  std::vector<PackRecord> packs;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    PackRecord p;
    p.name = std::string(r.Str16());
    p.size = r.U64();
    if (!GetEntries(r, &p.entries)) break;
    packs.push_back(std::move(p));
  }
  if (!r.ok() || packs.size() != n)
    return absl::DataLossError(absl::StrCat("index ", index_name, ": malformed"));
  return packs;
}

}  // namespace vdisk::backup
