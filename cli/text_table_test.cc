#include "cli/text_table.h"

#include <gtest/gtest.h>

namespace vdisk::cli {
namespace {

using A = TextTable::Align;

TEST(TextTable, ColumnsWidenToTheLongestCell) {
  TextTable t({{"ID", A::kLeft}, {"SIZE", A::kRight}, {"PARENT", A::kLeft}});
  t.AddRow({"short", "1 GiB", "-"});
  t.AddRow({"20261207T101500Z-0123456789abcdef", "100 GiB", "short"});
  EXPECT_EQ(t.Render(),
            "ID                                    SIZE  PARENT\n"
            "short                                1 GiB  -\n"
            "20261207T101500Z-0123456789abcdef  100 GiB  short\n");
}

TEST(TextTable, NotesTakeTheWholeLineAndDoNotWidenColumns) {
  TextTable t({{"ID", A::kLeft}, {"N", A::kRight}});
  t.AddRow({"x", "1"});
  t.AddNote("yyyyyyyyyyyy  unreadable: bad magic");
  t.AddRow({"z"});  // missing cells are blank
  EXPECT_EQ(t.Render(), "ID  N\nx   1\nyyyyyyyyyyyy  unreadable: bad magic\nz\n");
}

}  // namespace
}  // namespace vdisk::cli
