// The network actor's peer authentication: nonces and HMAC-SHA256 proofs of the cluster secret (OpenSSL).
// Each side sends Hello{name, role, nonce}, then Auth{HMAC(secret, peer's nonce || own name)}.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/result.h"

namespace lime::net {

constexpr size_t k_nonce_bytes = 32;
constexpr size_t k_mac_bytes = 32;

// 32 bytes from OpenSSL's CSPRNG; an error when the generator fails (the connection is then refused).
result<std::vector<uint8_t>> handshake_nonce();

// HMAC-SHA256(secret, nonce || name): what a node named `name` sends to prove it holds `secret`, answering the
// peer's `nonce`. An empty secret is a valid (zero-length) key.
std::vector<uint8_t> handshake_mac(const std::vector<uint8_t>& secret, const std::vector<uint8_t>& nonce,
                                   const std::string& name);

// Constant-time comparison of a received MAC with the expected one.
bool handshake_mac_equal(const std::vector<uint8_t>& expected, const std::vector<uint8_t>& got);

}  // namespace lime::net
