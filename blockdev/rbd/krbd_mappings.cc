#include "blockdev/rbd/krbd_mappings.h"

#include <fstream>

#include "nlohmann/json.hpp"

namespace vdisk::blockdev::rbd {

bool KernelDeviceReadOnly(const std::string& dev) {
  const auto slash = dev.find_last_of('/');
  const std::string name = slash == std::string::npos ? dev : dev.substr(slash + 1);
  std::ifstream in("/sys/block/" + name + "/ro");
  char c = '0';
  return in.get(c) && c == '1';
}

std::string FindReusableMapping(const std::string& list_json, const std::string& pool, const std::string& image,
                                bool read_only, const std::function<bool(const std::string&)>& is_read_only) {
  auto j = nlohmann::json::parse(list_json, nullptr, false);
  if (!j.is_array()) return "";
  for (const auto& m : j) {
    if (!m.is_object() || m.value("pool", "") != pool || m.value("name", "") != image) continue;
    if (m.value("snap", "-") != "-") continue;
    const std::string dev = m.value("device", "");
    if (!dev.empty() && is_read_only(dev) == read_only) return dev;
  }
  return "";
}

}  // namespace vdisk::blockdev::rbd
