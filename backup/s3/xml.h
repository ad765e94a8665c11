// Just enough XML for S3 responses (ListBucketResult, InitiateMultipartUploadResult,
// ListMultipartUploadsResult, Error): element text by tag name, with entity decoding.
// Not a general parser: no attributes, namespaces or CDATA are interpreted. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vdisk::backup::s3 {

// The decoded text of the first <tag>...</tag> in `xml`, or nullopt.
std::optional<std::string> XmlText(std::string_view xml, std::string_view tag);

// The raw inner XML of every <tag>...</tag> element, in document order (not nested-aware
// for the same tag name, which S3 never nests).
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);

// Decodes &amp; &lt; &gt; &quot; &apos; and numeric character references.
std::string XmlUnescape(std::string_view s);

// Escapes & < > " ' for element text.
std::string XmlEscape(std::string_view s);

}  // namespace vdisk::backup::s3
