#include "mallorn/server/identity/device_auth.hpp"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <string_view>

#include "mallorn/server/request_path.hpp"

namespace mallorn::server::identity {

std::optional<device_auth_mode> parse_device_auth_mode(std::string_view name) {
  if (name == "off") return device_auth_mode::off;
  if (name == "optional") return device_auth_mode::optional;
  if (name == "required") return device_auth_mode::required;
  return std::nullopt;
}

const char* device_auth_mode_name(device_auth_mode m) {
  switch (m) {
    case device_auth_mode::off: return "off";
    case device_auth_mode::optional: return "optional";
    case device_auth_mode::required: return "required";
  }
  return "off";
}

bool device_principal::names(const std::string& device_id) const {
  return std::find(ids.begin(), ids.end(), device_id) != ids.end();
}

std::vector<std::string> certificate_device_ids(X509* cert) {
  std::vector<std::string> out;
  if (!cert) return out;
  auto add = [&out](const unsigned char* data, int len) {
    if (!data || len <= 0) return;
    std::string id(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
    // An embedded NUL or any character outside the device-id set: not a name we can bind.
    if (is_valid_device_id(id) && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(std::move(id));
  };
  if (X509_NAME* subject = X509_get_subject_name(cert)) {
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0)
      if (ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
          cn && ASN1_STRING_type(cn) != V_ASN1_BMPSTRING && ASN1_STRING_type(cn) != V_ASN1_UNIVERSALSTRING)
        add(ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
  }
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      if (n->type != GEN_DNS && n->type != GEN_URI) continue;
      const unsigned char* data = ASN1_STRING_get0_data(n->d.ia5);
      int len = ASN1_STRING_length(n->d.ia5);
      // URI SANs may carry the id under our own URN ("urn:mallorn:device:dev-a").
      static constexpr std::string_view urn = "urn:mallorn:device:";
      if (n->type == GEN_URI && data && len > static_cast<int>(urn.size()) &&
          std::string_view(reinterpret_cast<const char*>(data), urn.size()) == urn) {
        data += urn.size();
        len -= static_cast<int>(urn.size());
      }
      add(data, len);
    }
    GENERAL_NAMES_free(names);
  }
  return out;
}

}  // namespace mallorn::server::identity
