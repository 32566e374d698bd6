#include "mallorn/proto/control_messages.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace mallorn::proto {
namespace {

using json = nlohmann::json;

core::error bad(const std::string& what) { return core::make_error(core::errc::invalid_argument, what); }

core::result<json> parse_object(std::span<const std::uint8_t> payload, const char* what) {
  if (payload.size() > max_control_payload)
    return bad(std::string(what) + ": " + std::to_string(payload.size()) + " bytes, more than " + std::to_string(max_control_payload));
  auto doc = json::parse(payload.begin(), payload.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad(std::string(what) + ": not a JSON object");
  return doc;
}

// Optional string field of at most max_len characters ("" when absent).
core::result<std::string> text(const json& doc, const char* name, std::size_t max_len) {
  if (!doc.contains(name) || doc[name].is_null()) return std::string();
  if (!doc[name].is_string() || doc[name].get_ref<const std::string&>().size() > max_len)
    return bad(std::string("'") + name + "' must be a string of at most " + std::to_string(max_len) + " characters");
  return doc[name].get<std::string>();
}

core::result<std::uint64_t> number(const json& doc, const char* name, std::uint64_t max, bool required) {
  if (!doc.contains(name) || doc[name].is_null()) {
    if (required) return bad(std::string("missing '") + name + "'");
    return std::uint64_t{0};
  }
  if (!doc[name].is_number_unsigned() || doc[name].get<std::uint64_t>() > max)
    return bad(std::string("'") + name + "' must be a whole number in 0.." + std::to_string(max));
  return doc[name].get<std::uint64_t>();
}

bool hex_of(const std::string& s, std::size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

template <class E>
core::result<E> enum_field(const json& doc, const char* name, std::initializer_list<E> values, const char* (*names)(E)) {
  auto s = text(doc, name, 32);
  if (!s) return s.err();
  for (E v : values)
    if (*s == names(v)) return v;
  return bad(std::string("'") + name + "' has an unknown value '" + *s + "'");
}

}  // namespace

const char* offer_status_name(offer_status s) {
  switch (s) {
    case offer_status::ready: return "ready";
    case offer_status::up_to_date: return "up_to_date";
    case offer_status::wait: return "wait";
    case offer_status::unavailable: return "unavailable";
  }
  return "";
}

const char* device_state_name(device_state s) {
  switch (s) {
    case device_state::downloading: return "downloading";
    case device_state::verifying: return "verifying";
    case device_state::committed: return "committed";
    case device_state::failed: return "failed";
  }
  return "";
}

std::string to_json(const announce_msg& m) {
  json j = {{"free_ram", m.free_ram}, {"max_block", m.max_block}};
  if (!m.sha256.empty()) j["sha256"] = m.sha256;
  if (!m.short_id.empty()) j["short_id"] = m.short_id;
  if (!m.model.empty()) j["model"] = m.model;
  if (!m.version.empty()) j["version"] = m.version;
  if (!m.channel.empty()) j["channel"] = m.channel;
  return j.dump();
}

std::string to_json(const offer_msg& m) {
  json j = {{"status", offer_status_name(m.status)}};
  if (!m.model.empty()) j["model"] = m.model;
  if (m.status == offer_status::ready) {
    j.update({{"session", m.session},           {"patch_id", m.patch_id},     {"patch_size", m.patch_size},
              {"patch_sha256", m.patch_sha256}, {"block_size", m.block_size}, {"blocks", m.blocks},
              {"target_version", m.target_version}, {"target_sha256", m.target_sha256},
              {"target_size", m.target_size},   {"signed", m.is_signed}});
  }
  if (m.status == offer_status::up_to_date) j["target_version"] = m.target_version;
  if (m.status == offer_status::wait) j["retry_after"] = m.retry_after;
  if (!m.reason.empty()) j["reason"] = m.reason;
  return j.dump();
}

std::string to_json(const status_msg& m) {
  json j = {{"session", m.session}, {"state", device_state_name(m.state)}, {"received", m.received}, {"total", m.total}};
  if (!m.from_version.empty()) j["from_version"] = m.from_version;
  if (!m.to_version.empty()) j["to_version"] = m.to_version;
  if (!m.error.empty()) j["error"] = m.error;
  return j.dump();
}

core::result<announce_msg> parse_announce(std::span<const std::uint8_t> payload) {
  auto doc = parse_object(payload, "announce");
  if (!doc) return doc.err();
  announce_msg m;
  auto model = text(*doc, "model", 128), sha = text(*doc, "sha256", 64), sid = text(*doc, "short_id", 16),
       version = text(*doc, "version", 64), channel = text(*doc, "channel", 64);
  for (auto* r : {&model, &sha, &sid, &version, &channel})
    if (!*r) return r->err().with("announce");
  auto ram = number(*doc, "free_ram", UINT32_MAX, false), block = number(*doc, "max_block", 65535, true);
  if (!ram) return ram.err().with("announce");
  if (!block) return block.err().with("announce");
  m.model = *model;
  m.sha256 = lower(*sha);
  m.short_id = lower(*sid);
  m.version = *version;
  m.channel = *channel;
  m.free_ram = static_cast<std::uint32_t>(*ram);
  m.max_block = static_cast<std::uint32_t>(*block);
  if (!m.sha256.empty() && !hex_of(m.sha256, 64)) return bad("announce: 'sha256' must be 64 hex characters");
  if (!m.short_id.empty() && !hex_of(m.short_id, 16)) return bad("announce: 'short_id' must be 16 hex characters");
  if (m.sha256.empty() && m.short_id.empty()) return bad("announce: send 'sha256' or 'short_id'");
  if (m.max_block < 64) return bad("announce: 'max_block' must be at least 64");
  return m;
}

core::result<offer_msg> parse_offer(std::span<const std::uint8_t> payload) {
  auto doc = parse_object(payload, "offer");
  if (!doc) return doc.err();
  offer_msg m;
  auto status = enum_field(*doc, "status", {offer_status::ready, offer_status::up_to_date, offer_status::wait,
                                            offer_status::unavailable}, offer_status_name);
  if (!status) return status.err().with("offer");
  m.status = *status;
  auto model = text(*doc, "model", 128), reason = text(*doc, "reason", 1024), tv = text(*doc, "target_version", 64);
  for (auto* r : {&model, &reason, &tv})
    if (!*r) return r->err().with("offer");
  m.model = *model;
  m.reason = *reason;
  m.target_version = *tv;
  if (m.status == offer_status::wait) {
    auto ra = number(*doc, "retry_after", 86400, false);
    if (!ra) return ra.err().with("offer");
    m.retry_after = static_cast<std::uint32_t>(*ra);
  }
  if (m.status != offer_status::ready) return m;
  auto session = number(*doc, "session", UINT32_MAX, true), psize = number(*doc, "patch_size", UINT32_MAX, true),
       bsize = number(*doc, "block_size", 65535, true), blocks = number(*doc, "blocks", UINT32_MAX, true),
       tsize = number(*doc, "target_size", UINT64_MAX, true);
  for (auto* r : {&session, &psize, &bsize, &blocks, &tsize})
    if (!*r) return r->err().with("offer");
  auto pid = text(*doc, "patch_id", 64), psha = text(*doc, "patch_sha256", 64), tsha = text(*doc, "target_sha256", 64);
  for (auto* r : {&pid, &psha, &tsha})
    if (!*r) return r->err().with("offer");
  m.session = static_cast<std::uint32_t>(*session);
  m.patch_size = *psize;
  m.block_size = static_cast<std::uint32_t>(*bsize);
  m.blocks = static_cast<std::uint32_t>(*blocks);
  m.target_size = *tsize;
  m.patch_id = *pid;
  m.patch_sha256 = lower(*psha);
  m.target_sha256 = lower(*tsha);
  m.is_signed = doc->value("signed", false);
  if (!hex_of(m.patch_sha256, 64) || !hex_of(m.target_sha256, 64)) return bad("offer: hashes must be 64 hex characters");
  if (m.block_size == 0 || m.patch_size == 0 || m.blocks != (m.patch_size + m.block_size - 1) / m.block_size)
    return bad("offer: 'blocks' does not match patch_size / block_size");
  return m;
}

core::result<status_msg> parse_status(std::span<const std::uint8_t> payload) {
  auto doc = parse_object(payload, "status");
  if (!doc) return doc.err();
  status_msg m;
  auto state = enum_field(*doc, "state", {device_state::downloading, device_state::verifying, device_state::committed,
                                          device_state::failed}, device_state_name);
  if (!state) return state.err().with("status");
  m.state = *state;
  auto session = number(*doc, "session", UINT32_MAX, false), received = number(*doc, "received", UINT64_MAX, false),
       total = number(*doc, "total", UINT64_MAX, false);
  for (auto* r : {&session, &received, &total})
    if (!*r) return r->err().with("status");
  auto from = text(*doc, "from_version", 64), to = text(*doc, "to_version", 64), error = text(*doc, "error", 1024);
  for (auto* r : {&from, &to, &error})
    if (!*r) return r->err().with("status");
  m.session = static_cast<std::uint32_t>(*session);
  m.received = *received;
  m.total = *total;
  m.from_version = *from;
  m.to_version = *to;
  m.error = *error;
  return m;
}

}  // namespace mallorn::proto
