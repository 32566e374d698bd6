// --device-auth off|optional|required, and who a device request is from.
//   off       the quick start: any client may speak for any device id;
//   optional  credentials are checked when presented (a bad token is 401, a device id other than
//             the authenticated one is 403); anonymous devices are still served;
//   required  every device request (check-update, report, downloads) needs a client certificate
//             or a device token; the enrollment routes stay open.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

typedef struct x509_st X509;

namespace mallorn::server::identity {

enum class device_auth_mode { off, optional, required };
std::optional<device_auth_mode> parse_device_auth_mode(std::string_view name);
const char* device_auth_mode_name(device_auth_mode m);

// Who sent a device request.
struct device_principal {
  enum class source { anonymous, token, certificate } from = source::anonymous;
  // token: the one device id; certificate: every id the certificate names (CN first, then DNS
  // and URI SANs that are valid device ids; "urn:mallorn:device:ID" gives ID).
  std::vector<std::string> ids;
  bool names(const std::string& device_id) const;
};

// The device ids a verified client certificate names: the subject's CN, then DNS and URI
// subject-alternative names; names that are not valid device ids are left out.
std::vector<std::string> certificate_device_ids(X509* cert);

}  // namespace mallorn::server::identity
