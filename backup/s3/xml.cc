#include "backup/s3/xml.h"

#include <cstdlib>

namespace vdisk::backup::s3 {

namespace {

// Appends code point `cp` as UTF-8; a reference to no character (0, a surrogate, above
// U+10FFFF, or a number too large to parse) becomes U+FFFD rather than invalid bytes.
void AppendUtf8(std::string* out, unsigned long cp) {
  if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Finds the next start tag "<tag>" or "<tag ...>" at or after pos; returns the index just
// after '>' and sets *self_closing.
size_t FindOpen(std::string_view xml, std::string_view tag, size_t pos, size_t* open_at,
                bool* self_closing) {
  while (true) {
    size_t lt = xml.find('<', pos);
    if (lt == std::string_view::npos) return std::string_view::npos;
    if (xml.compare(lt + 1, tag.size(), tag) == 0) {
      size_t after = lt + 1 + tag.size();
      if (after < xml.size() && (xml[after] == '>' || xml[after] == ' ' || xml[after] == '/')) {
        size_t gt = xml.find('>', after);
        if (gt == std::string_view::npos) return std::string_view::npos;
        *open_at = lt;
        *self_closing = gt > 0 && xml[gt - 1] == '/';
        return gt + 1;
      }
    }
    pos = lt + 1;
  }
}

}  // namespace

std::string XmlUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out.push_back('&');
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out.push_back('&');
    else if (ent == "lt") out.push_back('<');
    else if (ent == "gt") out.push_back('>');
    else if (ent == "quot") out.push_back('"');
    else if (ent == "apos") out.push_back('\'');
    else if (!ent.empty() && ent[0] == '#') {
      std::string num(ent.substr(1));
      unsigned long cp = (!num.empty() && (num[0] == 'x' || num[0] == 'X'))
                             ? std::strtoul(num.c_str() + 1, nullptr, 16)
                             : std::strtoul(num.c_str(), nullptr, 10);
      AppendUtf8(&out, cp);
    } else {
      out.append(s.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  const std::string close = "</" + std::string(tag) + ">";
  while (true) {
    size_t open_at = 0;
    bool self_closing = false;
    size_t start = FindOpen(xml, tag, pos, &open_at, &self_closing);
    if (start == std::string_view::npos) break;
    if (self_closing) {
      out.push_back(xml.substr(start, 0));  // empty, but still a view into `xml`
      pos = start;
      continue;
    }
    size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

std::optional<std::string> XmlText(std::string_view xml, std::string_view tag) {
  auto all = XmlElements(xml, tag);
  if (all.empty()) return std::nullopt;
  return XmlUnescape(all.front());
}

}  // namespace vdisk::backup::s3
