// Little-endian binary encoding helpers for the repository's own formats (pack trailers,
// indexes, chunk maps). ByteReader never reads past its input: a short or malformed input
// makes ok() false and every later read return zeroes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vdisk::backup {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void Bytes(std::string_view b) { out_->append(b); }
  void Str16(std::string_view s) {  // u16 length + bytes
    U16(static_cast<uint16_t>(s.size()));
    Bytes(s.substr(0, 0xFFFF));
  }

 private:
  void Raw(const void* p, size_t n) {  // host is little-endian (x86-64, arm64)
    out_->append(static_cast<const char*>(p), n);
  }
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  uint8_t U8() { uint8_t v = 0; Raw(&v, 1); return v; }
  uint16_t U16() { uint16_t v = 0; Raw(&v, 2); return v; }
  uint32_t U32() { uint32_t v = 0; Raw(&v, 4); return v; }
  uint64_t U64() { uint64_t v = 0; Raw(&v, 8); return v; }
  std::string_view Bytes(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string_view Str16() { return Bytes(U16()); }
  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }

 private:
  void Raw(void* p, size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return;
    }
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace vdisk::backup
