// The lossless fingerprint of a logits stream: an XXH64 chain over the raw fp32 bytes of each logits row.
// Two runs that agree on this chain produced bitwise identical logits, row by row, in the same order.
#pragma once
#include <cstdint>
#include <string>

namespace lime {

// The chain's starting value h0.
constexpr uint64_t k_logits_checksum_init = 0;

// h_{i+1} = XXH64(bytes of logits[0..n_vocab), seed = h_i): the n_vocab * 4 bytes exactly as they lie in memory
// (IEEE fp32, little-endian on every supported host), so -0.0 vs +0.0 and NaN payloads count.
// n_vocab <= 0 hashes zero bytes.
uint64_t logits_checksum_step(uint64_t prev, const float* logits, int32_t n_vocab);

// 16 lowercase hex digits, most significant first (printf "%016llx").
std::string checksum_hex(uint64_t h);

}  // namespace lime
