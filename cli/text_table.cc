#include "cli/text_table.h"

#include <algorithm>

namespace vdisk::cli {

std::string TextTable::Render() const {
  std::vector<size_t> width(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) width[c] = columns_[c].header.size();
  for (const auto& r : rows_) {
    if (r.note) continue;
    for (size_t c = 0; c < columns_.size() && c < r.cells.size(); ++c)
      width[c] = std::max(width[c], r.cells[c].size());
  }
  static const std::string kEmpty;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < columns_.size(); ++c) {
      const std::string& s = c < cells.size() ? cells[c] : kEmpty;
      std::string pad(width[c] - std::min(width[c], s.size()), ' ');
      if (c) out += "  ";
      out += columns_[c].align == Align::kRight ? pad + s : s + pad;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::vector<std::string> header;
  for (const auto& c : columns_) header.push_back(c.header);
  std::string out = line(header);
  for (const auto& r : rows_) out += r.note ? r.cells[0] + "\n" : line(r.cells);
  return out;
}

}  // namespace vdisk::cli
