#include "mallorn/agent/agent_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "mallorn/core/key_file.hpp"

namespace mallorn::agent {

core::result<agent_config> load_agent_config(const std::filesystem::path& file) {
  auto bad = [&](const std::string& what) { return core::make_error(core::errc::invalid_argument, file.string() + ": " + what); };
  std::ifstream in(file);
  if (!in) return bad("cannot open");
  auto doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  agent_config c;
  try {
    c.server = doc.at("server").get<std::string>();
    c.device_id = doc.at("device_id").get<std::string>();
    if (doc.contains("public_key")) {
      auto key = core::load_public_key_file(doc["public_key"].get<std::string>());
      if (!key) return key.err();
      c.public_key = *key;
    }
    auto keyring = load_keyring_options(doc);
    if (!keyring) return bad(keyring.err().message);
    c.keyring = *keyring;
    c.tls.ca_file = doc.value("ca_file", "");
    c.tls.client_cert = doc.value("client_cert", "");
    c.tls.client_key = doc.value("client_key", "");
    c.device_key = doc.value("device_key", "");
    c.poll_interval = std::chrono::seconds(doc.value("poll_interval", 300));
    c.jitter = doc.value("jitter", 0.2);
    c.http_timeout = std::chrono::seconds(doc.value("http_timeout", 30));
    c.allow_downgrade = doc.value("allow_downgrade", false);
    c.max_model_size = doc.value("max_model_size", c.max_model_size);
    if (doc.contains("tags")) c.tags = doc["tags"].get<std::map<std::string, std::string>>();
    if (doc.contains("tags_command")) c.tags_command = doc["tags_command"].get<std::vector<std::string>>();
    for (const auto& m : doc.at("models")) {
      model_config mc;
      mc.name = m.at("name").get<std::string>();
      mc.dir = m.at("dir").get<std::string>();
      mc.file = m.value("file", "model.bin");
      if (m.contains("health_check")) mc.health_check = m["health_check"].get<std::vector<std::string>>();
      mc.health_timeout = std::chrono::seconds(m.value("health_timeout", 60));
      c.models.push_back(std::move(mc));
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  if (c.device_id.empty() || c.models.empty()) return bad("needs a device_id and at least one model");
  if (c.max_model_size == 0) return bad("max_model_size must be > 0");
  if (c.tags.size() > 64) return bad("'tags' holds at most 64 keys (the server refuses more)");
  if (!c.tags_command.empty() && c.tags_command[0].empty()) return bad("'tags_command' must start with a program");
  if (c.poll_interval.count() <= 0 || c.jitter < 0 || c.jitter > 1) return bad("poll_interval must be > 0, jitter in 0..1");
  return c;
}

}  // namespace mallorn::agent
