// The 6-bit scales and mins of a q4_k / q5_k super-block (k4_scale_min's layout), unpacked four at a time in
// 32-bit words, for the x86 K-quant kernels. Plain code, in an unnamed namespace: each ISA file keeps its own copy.
#pragma once
#include <cstdint>
#include <cstring>

namespace lime::cpu {
namespace {

// Bytes j of sc_lo / sc_hi: sc[j] / sc[4 + j]; likewise m_lo / m_hi for the mins. In the 12 packed bytes,
// bytes 0-3 hold sc[0..3] and, in bits 6-7, the top bits of sc[4..7]; bytes 4-7 likewise m[0..3] and m[4..7]'s
// top bits; bytes 8-11 the low nibbles of sc[4..7] (low) and m[4..7] (high).
struct k4_scale_words {
  uint32_t sc_lo, sc_hi, m_lo, m_hi;
};

inline k4_scale_words unpack_k4_scales(const uint8_t* scales12) {
  uint32_t w[3];
  std::memcpy(w, scales12, sizeof w);
  return {w[0] & 0x3f3f3f3fu, (w[2] & 0x0f0f0f0fu) | ((w[0] >> 2) & 0x30303030u), w[1] & 0x3f3f3f3fu,
          ((w[2] >> 4) & 0x0f0f0f0fu) | ((w[1] >> 2) & 0x30303030u)};
}

}  // namespace
}  // namespace lime::cpu
