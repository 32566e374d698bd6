// JSON shapes shared by the routes (private to the server library).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "mallorn/server/router.hpp"

namespace mallorn::server {

http_response json_response(unsigned status, const nlohmann::json& body);
nlohmann::json fingerprint_json(const model_version& v);
nlohmann::json patch_json(const patch_row& p);
std::string patch_url(const std::string& id);
std::string model_url(const model_version& v);
// A file could not be opened or read for a reason other than "missing": 503 + Retry-After when
// retrying can help (out of descriptors or space, I/O error), else 500. No path in the message.
http_response unavailable_response(int sys_errno);
// Parses a JSON object body; nullopt (and sets `error`) when it is not one.
std::optional<nlohmann::json> parse_json_object(const std::string& body, http_response& error);

}  // namespace mallorn::server
