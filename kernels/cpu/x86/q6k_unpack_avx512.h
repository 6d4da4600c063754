// Unpacking of q6_k super-blocks to one int8 (q - 32) per element in element order, and their 16 scales to
// d * sc, as the AVX-512 K-quant tiles stage them and the q6_k matvec pipelines them. Include only from
// *_avx512.cpp: everything is in an unnamed namespace, so each such file owns a private copy.
#pragma once

#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lime::cpu {
namespace {

constexpr size_t k_q6k_bytes = 210;  // bytes per q6_k super-block: ql[128], qh[64], scales[16] (int8), d (fp16)

// d * sc of the 16 groups of 16 elements of the super-block at blk -> a[16].
inline void q6k_unpack_scales(const uint8_t* blk, float* a) {
  uint16_t d16;
  std::memcpy(&d16, blk + 208, sizeof d16);
  const __m512 d = _mm512_set1_ps(vec16_avx512::half_to_float(d16));
  const __m128i sc16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
  _mm512_store_ps(a, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc16))));
}

// Elements [128h, 128h + 128) of the super-block at blk -> q[128h ...] (64-byte aligned) as q - 32 (see
// block_q6_k). ql[64h, 64h + 64) = [ql[64h + l] | ql[64h + 32 + l]] pairs with qh[32h + l] in both halves; 16-bit
// shifts move each byte's 2 high bits to bits 4-5 of the same byte (<< 4 and << 2 for the low nibbles' elements,
// >> 0 and >> 2 for the high ones'); bits crossing from the neighbouring byte land outside the masks.
// (a & 0x0f) | b is one ternary-logic op (0xec).
inline void q6k_unpack_half(const uint8_t* blk, int h, int8_t* q) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  const __m512i bias = _mm512_set1_epi8(32);
  const __m512i up = _mm512_setr_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                       0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002);
  const __m512i down = _mm512_setr_epi64(0, 0, 0, 0, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                         0x0002000200020002);
  const __m512i l01 = _mm512_loadu_si512(blk + 64 * h);
  const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h)));
  const __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(hb, up), bits45);
  const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(hb, down), bits45);
  const __m512i g01 = _mm512_ternarylogic_epi32(l01, h01, low4, 0xec);
  const __m512i g23 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l01, 4), h23, low4, 0xec);
  _mm512_store_si512(q + 128 * h, _mm512_sub_epi8(g01, bias));
  _mm512_store_si512(q + 128 * h + 64, _mm512_sub_epi8(g23, bias));
}

}  // namespace
}  // namespace lime::cpu
