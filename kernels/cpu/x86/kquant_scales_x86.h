// The 6-bit scales and mins of a q4_k / q5_k super-block (k4_scale_min's layout), unpacked four at a time in
// 32-bit words or all 16 in one xmm, for the x86 K-quant kernels (AVX2 and up). Plain code, in an unnamed
// namespace: each ISA file keeps its own copy.
#pragma once
#include <immintrin.h>

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

// The same four words from the super-block's 16-byte header at blk (d, dmin, then the 12 packed bytes) in one xmm:
// bytes sc[0..7], m[0..7]. In-lane dword shuffles, shifts and masks only (no cross-lane shuffle).
inline __m128i unpack_k4_scales_xmm(const uint8_t* blk) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));  // d, dmin (fp16), then w0, w1, w2
  const __m128i a = _mm_shuffle_epi32(h, _MM_SHUFFLE(3, 2, 3, 1));            // w0, w2, w1, w2
  const __m128i b = _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 2, 1, 1));            // -, w0, -, w1
  const __m128i low6 = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i top2 = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low6, top2);
}

}  // namespace
}  // namespace lime::cpu
