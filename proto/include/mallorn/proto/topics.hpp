// MQTT topic names (docs/protocol.md, "Topics"). Every device has its own subtree
// <prefix>/dev/<device_id>/{announce,offer,req,blk,status}; the server's presence is
// <prefix>/server/state.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace mallorn::proto {

inline constexpr std::string_view default_prefix = "mallorn/v1";

enum class topic_kind { announce, offer, request, block, status };
const char* topic_suffix(topic_kind k);

std::string device_topic(std::string_view prefix, std::string_view device_id, topic_kind k);
std::string server_state_topic(std::string_view prefix);
// Subscription filter matching one kind for every device ("<prefix>/dev/+/<kind>").
std::string all_devices_filter(std::string_view prefix, topic_kind k);

struct device_topic_parts {
  std::string device_id;
  topic_kind kind;
};
// Parses "<prefix>/dev/<id>/<kind>"; nullopt for anything else.
std::optional<device_topic_parts> parse_device_topic(std::string_view prefix, std::string_view topic);

// Device ids travel inside topic names: 1..64 characters of [A-Za-z0-9._-].
bool valid_device_id(std::string_view id);

}  // namespace mallorn::proto
