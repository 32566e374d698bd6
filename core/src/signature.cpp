#include "mallorn/core/signature.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

namespace mallorn::core {
namespace {

struct pkey_free { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct md_ctx_free { void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); } };
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;

error sig_error(const std::string& what) { return make_error(errc::signature_error, what); }

result<ed25519_private_key> complete_from_seed(std::span<const std::uint8_t> seed) {
  pkey_ptr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), 32));
  if (!key) return sig_error("private key: OpenSSL rejected the Ed25519 seed");
  ed25519_private_key out{};
  std::copy(seed.begin(), seed.begin() + 32, out.begin());
  std::size_t len = 32;
  if (EVP_PKEY_get_raw_public_key(key.get(), out.data() + 32, &len) != 1 || len != 32)
    return sig_error("private key: cannot derive the public key");
  return out;
}

}  // namespace

result<ed25519_keypair> ed25519_generate() {
  std::array<std::uint8_t, 32> seed{};
  if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) != 1) return sig_error("no randomness for key generation");
  auto priv = complete_from_seed(seed);
  if (!priv) return priv.err();
  ed25519_keypair kp;
  kp.private_key = *priv;
  std::copy(priv->begin() + 32, priv->end(), kp.public_key.begin());
  return kp;
}

result<ed25519_private_key> ed25519_private_key_from(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != 32 && bytes.size() != 64)
    return sig_error("private key must be 64 bytes (seed + public key) or a 32-byte seed, got " +
                     std::to_string(bytes.size()));
  auto full = complete_from_seed(bytes.first(32));
  if (!full) return full.err();
  if (bytes.size() == 64 && !std::equal(bytes.begin() + 32, bytes.end(), full->begin() + 32))
    return sig_error("private key: public half does not match seed");
  return full;
}

result<ed25519_public_key> ed25519_public_key_from(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != 32) return sig_error("public key must be 32 bytes, got " + std::to_string(bytes.size()));
  ed25519_public_key k{};
  std::copy(bytes.begin(), bytes.end(), k.begin());
  return k;
}

result<ed25519_signature> ed25519_sign(const ed25519_private_key& key, std::span<const std::uint8_t> message) {
  pkey_ptr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.data(), 32));
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1)
    return sig_error("cannot initialise Ed25519 signing");
  ed25519_signature sig{};
  std::size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 || len != sig.size())
    return sig_error("Ed25519 signing failed");
  return sig;
}

bool ed25519_verify(const ed25519_public_key& key, std::span<const std::uint8_t> message, const ed25519_signature& sig) {
  pkey_ptr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
}

}  // namespace mallorn::core
