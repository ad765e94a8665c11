// libFuzzer target: the backup repository's object decoding (backup/repo/) as read from a bucket
// someone else can write to. Without the repository key an attacker only reaches the
// authentication checks, so the input is also sealed under a fixed test key (as if the attacker
// had it) to reach the parsers behind them: pack footers and trailers, index objects, manifests
// (zstd + JSON), chunk blobs and key objects (JSON, scrypt-wrapped keys).
//
// Input: [0] which decoder, the rest its object (plaintext for the sealed ones).
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backup/repo/chunk_codec.h"
#include "backup/repo/crypto.h"
#include "backup/repo/key_wrap.h"
#include "backup/repo/manifest.h"
#include "backup/repo/pack_format.h"

using namespace vdisk::backup;

namespace {

const RepoKeys& Keys() {
  static const RepoKeys keys = [] {
    RepoKeys k;
    k.data_key.fill(0x11);
    k.id_key.fill(0x22);
    return k;
  }();
  return keys;
}

const std::string kPack(64, 'a');

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0] % 8;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const RepoKeys& k = Keys();
  switch (which) {
    case 0:  // raw objects as stored: no key reaches past the authentication
      (void)ParsePackFooter(in);
      (void)DecodePackTrailer(k, kPack, in);
      (void)DecodeIndex(k, "idx", in);
      (void)DecodeManifest(k, "m", in);
      break;
    case 1:
      (void)DecodePackTrailer(k, kPack, Seal(k.data_key, in, "vdisk-pack-trailer-v1|" + kPack));
      break;
    case 2:
      (void)DecodeIndex(k, "idx", Seal(k.data_key, in, "vdisk-index-v1|idx"));
      break;
    case 3: {  // a manifest's JSON text, compressed and sealed as EncodeManifest does
      std::string z(ZSTD_compressBound(in.size()), '\0');
      size_t n = ZSTD_compress(z.data(), z.size(), in.data(), in.size(), 1);
      if (ZSTD_isError(n)) return 0;
      z.resize(n);
      (void)DecodeManifest(k, "m", Seal(k.data_key, z, "vdisk-manifest-v1|m"));
      break;
    }
    case 4:  // a manifest whose compressed frame itself is hostile
      (void)DecodeManifest(k, "m", Seal(k.data_key, in, "vdisk-manifest-v1|m"));
      break;
    case 5: {  // a chunk blob: [raw length u32][sealed payload plaintext]
      if (in.size() < 4) return 0;
      uint32_t raw;
      std::memcpy(&raw, in.data(), 4);
      ChunkId id;
      id.bytes.fill(0x33);
      std::string aad = "vdisk-chunk-v1|";
      aad.append(id.view());
      std::string out;
      (void)DecodeChunk(k, id, Seal(k.data_key, in.substr(4), aad), raw % (16 << 20), &out);
      break;
    }
    case 6: {  // a key object (JSON); a key file secret avoids scrypt's cost per input
      RepoSecret s;
      s.kind = RepoSecret::Kind::kKeyFile;
      s.value = std::string(32, 'k');
      (void)UnwrapKeys(std::string(in), s, "repo");
      break;
    }
    default:
      (void)ChunkIdFromHex(in);
      (void)Base64Decode(in);
      break;
  }
  return 0;
}
