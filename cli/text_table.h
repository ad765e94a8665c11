// A plain-text table for the CLI: columns sized to their widest cell, so long ids never shift
// the columns after them. Not thread-safe; build, then Render().
#pragma once

#include <string>
#include <vector>

namespace vdisk::cli {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // A row of cells, one per column (missing cells are blank, extra ones ignored).
  void AddRow(std::vector<std::string> cells) { rows_.push_back({std::move(cells), false}); }
  // A free-form line (e.g. an error for one entry): printed as is, does not size the columns.
  void AddNote(std::string line) { rows_.push_back({{std::move(line)}, true}); }

  // The header and the rows, one line each, columns separated by two spaces, no trailing blanks.
  std::string Render() const;

 private:
  struct Row {
    std::vector<std::string> cells;
    bool note;
  };
  std::vector<Column> columns_;
  std::vector<Row> rows_;
};

}  // namespace vdisk::cli
