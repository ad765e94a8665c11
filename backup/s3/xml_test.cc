#include "backup/s3/xml.h"

#include <gtest/gtest.h>

namespace vdisk::backup::s3 {
namespace {

TEST(Xml, ListBucketResultFields) {
  const char* xml =
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>)"
      R"(<IsTruncated>true</IsTruncated><NextContinuationToken>a&amp;b</NextContinuationToken>)"
      R"(<Contents><Key>packs/a&lt;1</Key><Size>10</Size></Contents>)"
      R"(<Contents><Key>packs/b</Key><Size>20</Size></Contents></ListBucketResult>)";
  EXPECT_EQ(XmlText(xml, "IsTruncated").value_or(""), "true");
  EXPECT_EQ(XmlText(xml, "NextContinuationToken").value_or(""), "a&b");
  auto contents = XmlElements(xml, "Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(XmlText(contents[0], "Key").value_or(""), "packs/a<1");
  EXPECT_EQ(XmlText(contents[1], "Size").value_or(""), "20");
  EXPECT_FALSE(XmlText(xml, "Missing").has_value());
}

TEST(Xml, TagPrefixIsNotConfused) {
  const char* xml = "<KeyCount>2</KeyCount><Key>k</Key>";
  EXPECT_EQ(XmlText(xml, "Key").value_or(""), "k");
}

TEST(Xml, SelfClosingAndNumericEntities) {
  EXPECT_EQ(XmlElements("<a/><a>x</a>", "a").size(), 2u);
  EXPECT_EQ(XmlUnescape("&#65;&#x42;&#xE9;"), "AB\xC3\xA9");
  EXPECT_EQ(XmlEscape("<a&b>"), "&lt;a&amp;b&gt;");
}

// Found by fuzz/s3_xml_fuzz: references to no character made invalid UTF-8, and an empty
// element's view pointed nowhere.
TEST(Xml, HostileReferencesAndEmptyElements) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(XmlUnescape("&#xFFFFFFFF;&#0;&#xD800;&#99999999999999999999;"), fffd + fffd + fffd + fffd);
  EXPECT_EQ(XmlUnescape("&#x10FFFF;"), "\xF4\x8F\xBF\xBF");
  const std::string_view doc = "<a/>";
  auto all = XmlElements(doc, "a");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].empty());
  EXPECT_TRUE(all[0].data() >= doc.data() && all[0].data() <= doc.data() + doc.size());
}

}  // namespace
}  // namespace vdisk::backup::s3
