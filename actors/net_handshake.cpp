// Nonces and HMAC-SHA256 for the network actor's handshake (OpenSSL libcrypto).
#include "actors/net_handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace lime::net {

result<std::vector<uint8_t>> handshake_nonce() {
  std::vector<uint8_t> nonce(k_nonce_bytes);
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
    return make_error(errc::internal, "handshake: RAND_bytes failed");
  return nonce;
}

std::vector<uint8_t> handshake_mac(const std::vector<uint8_t>& secret, const std::vector<uint8_t>& nonce,
                                   const std::string& name) {
  std::vector<uint8_t> input(nonce);
  input.insert(input.end(), name.begin(), name.end());
  static const unsigned char empty_key[1] = {0};  // HMAC wants a non-null key pointer even for a zero-length key
  const unsigned char* key = secret.empty() ? empty_key : secret.data();
  std::vector<uint8_t> mac(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key, static_cast<int>(secret.size()), input.data(), input.size(), mac.data(), &len))
    return {};  // cannot happen with SHA-256; an empty MAC never verifies
  mac.resize(len);
  return mac;
}

bool handshake_mac_equal(const std::vector<uint8_t>& expected, const std::vector<uint8_t>& got) {
  if (expected.size() != k_mac_bytes || got.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), got.data(), expected.size()) == 0;
}

}  // namespace lime::net
