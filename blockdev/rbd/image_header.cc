#include "blockdev/rbd/image_header.h"

#include <cerrno>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::rbd {

namespace {
// Ceph's encoding of a string / bufferlist: u32 little-endian length, then the bytes.
void PutString(std::string* out, const std::string& v) {
  const auto n = static_cast<uint32_t>(v.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(v);
}
}  // namespace

StatusOr<std::string> ImageIdByName(const IoCtx& io, const std::string& name) {
  const std::string oid = "rbd_id." + name;
  char out[128];
  int r = rados_exec(io.get(), oid.c_str(), "rbd", "get_id", nullptr, 0, out, sizeof out);
  if (r == -ENOENT) return absl::NotFoundError(absl::StrCat("rbd image ", io.pool(), "/", name));
  if (r < 0) return RadosError(r, absl::StrCat("reading the id of image ", io.pool(), "/", name));
  if (r < 4) return absl::InternalError(absl::StrCat("short rbd id of ", io.pool(), "/", name));
  const auto* p = reinterpret_cast<const unsigned char*>(out);
  const uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24);
  if (len + 4u > static_cast<uint32_t>(r))
    return absl::InternalError(absl::StrCat("bad rbd id of ", io.pool(), "/", name));
  return std::string(out + 4, len);
}

Status TagNewImage(const IoCtx& io, const std::string& image_id,
                   const std::map<std::string, std::string>& metadata) {
  // cls rbd.metadata_set input: map<string, bufferlist> (u32 count, then key and value each
  // length-prefixed).
  std::string in;
  const auto n = static_cast<uint32_t>(metadata.size());
  for (int i = 0; i < 4; ++i) in.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  for (const auto& [k, v] : metadata) {
    PutString(&in, k);
    PutString(&in, v);
  }
  const std::string oid = "rbd_header." + image_id;
  int r = rados_exec(io.get(), oid.c_str(), "rbd", "metadata_set", in.data(), in.size(), nullptr, 0);
  if (r == -ENOENT) return absl::NotFoundError(absl::StrCat("rbd image id ", image_id));
  if (r < 0) return RadosError(r, "tagging the image (rbd metadata_set)");
  return Status();
}

}  // namespace vdisk::blockdev::rbd
