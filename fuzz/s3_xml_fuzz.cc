// libFuzzer target: the S3 XML reader (backup/s3/xml.h) on responses from an untrusted endpoint.
// Checks that nothing reads outside the input and that escaping round-trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backup/s3/xml.h"

using namespace vdisk::backup::s3;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  for (std::string_view tag : {"Key", "Size", "ETag", "UploadId", "Code", "Message", "Contents",
                               "IsTruncated", "NextContinuationToken", "Upload", "Part"}) {
    (void)XmlText(xml, tag);
    for (std::string_view inner : XmlElements(xml, tag)) {
      if (inner.data() < xml.data() || inner.data() + inner.size() > xml.data() + xml.size())
        __builtin_trap();  // a view must lie inside the document
      (void)XmlText(inner, "Key");
    }
  }
  const std::string plain = XmlUnescape(xml);
  if (XmlUnescape(XmlEscape(plain)) != plain) __builtin_trap();
  return 0;
}
