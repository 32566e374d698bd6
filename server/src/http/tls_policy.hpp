// The TLS settings mallornd serves with, on top of OpenSSL's defaults (docs/api.md, "TLS").
#pragma once
#include <openssl/ssl.h>

#include <string>

namespace mallorn::server {

// Applies the policy to a server context: TLS 1.2 and 1.3 only, forward-secret AEAD suites only,
// the server's order (AES-128-GCM first, ChaCha20 first for clients that ask for it first: those
// without AES instructions), no renegotiation or compression, stateless session tickets with a
// short lifetime and a session id context (without one, OpenSSL fails every resumption on a
// context that verifies client certificates). Returns an empty string, or what OpenSSL refused.
std::string apply_tls_policy(SSL_CTX* ctx);

// How long a session ticket can be resumed (seconds): nginx's ssl_session_timeout default. A
// resumed session keeps the client certificate it was verified with, so this also bounds how long
// a certificate is trusted without being checked again.
inline constexpr long tls_session_lifetime_s = 300;

}  // namespace mallorn::server
