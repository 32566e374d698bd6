#include "tls_policy.hpp"

namespace mallorn::server {
namespace {

// TLS 1.2: ECDHE key exchange and AEAD ciphers only (no static RSA, no CBC, no SHA-1 MACs).
// AES-128-GCM leads: as safe as AES-256 here, and a quarter fewer rounds for the server and for
// every device that decrypts a download.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
constexpr const char* tls13_suites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";

// Any value works as long as it is the same for every context of this server.
constexpr unsigned char session_id_context[] = "mallornd";

}  // namespace

std::string apply_tls_policy(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return "cannot set TLS 1.2 as the minimum";
  if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) return "TLS 1.2 cipher list refused";
  if (SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1) return "TLS 1.3 cipher suites refused";
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_COMPRESSION);
  // Stateless tickets, no server-side session cache: resuming costs the server no memory per
  // client, so a stranger's handshakes cannot fill a cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_timeout(ctx, tls_session_lifetime_s);
  if (SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1) != 1)
    return "cannot set the session id context";
  return {};
}

}  // namespace mallorn::server
