#include "mallorn/proto/topics.hpp"

#include <cctype>

namespace mallorn::proto {

const char* topic_suffix(topic_kind k) {
  switch (k) {
    case topic_kind::announce: return "announce";
    case topic_kind::offer: return "offer";
    case topic_kind::request: return "req";
    case topic_kind::block: return "blk";
    case topic_kind::status: return "status";
  }
  return "";
}

std::string device_topic(std::string_view prefix, std::string_view device_id, topic_kind k) {
  return std::string(prefix) + "/dev/" + std::string(device_id) + "/" + topic_suffix(k);
}

std::string server_state_topic(std::string_view prefix) { return std::string(prefix) + "/server/state"; }

std::string all_devices_filter(std::string_view prefix, topic_kind k) {
  return std::string(prefix) + "/dev/+/" + topic_suffix(k);
}

std::optional<device_topic_parts> parse_device_topic(std::string_view prefix, std::string_view topic) {
  const std::string head = std::string(prefix) + "/dev/";
  if (topic.substr(0, head.size()) != head) return std::nullopt;
  topic.remove_prefix(head.size());
  const auto slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto id = topic.substr(0, slash), suffix = topic.substr(slash + 1);
  if (!valid_device_id(id)) return std::nullopt;
  for (auto k : {topic_kind::announce, topic_kind::offer, topic_kind::request, topic_kind::block, topic_kind::status})
    if (suffix == topic_suffix(k)) return device_topic_parts{std::string(id), k};
  return std::nullopt;
}

bool valid_device_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

}  // namespace mallorn::proto
