// The d1 = d * sc and m1 = dmin * m of a q4_k / q5_k super-block (the reference's two multiplies) as 16 floats, for
// the AVX-512 K-quant matvecs. Include only from *_avx512.cpp (after vec16_avx512.h): everything is in an unnamed
// namespace, so each such file owns a private copy compiled with its flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/x86/kquant_scales_x86.h"

namespace lime::cpu {
namespace {

// dm[2j] = d * sc[j], dm[2j + 1] = dmin * m[j] (j < 8) of the super-block at blk (d, dmin and the 12 scale bytes
// lead both types' blocks), from unpack_k4_scales_xmm. Against the scalar unpacking it replaced (unpack_k4_scales, 4
// inserts and a vpermps per super-block), in the q4_k matvec with its prefetch, one Zen 5 core (in process, same
// bits, median of 7): 1.09-1.14x from DRAM and in L2, but 0.95-0.97x at 2048x8192.
inline void k4_unpack_dm(const uint8_t* blk, float* dm) {
  const __m128i sm = unpack_k4_scales_xmm(blk);                             // sc[0..7], m[0..7]
  const __m128i pairs = _mm_unpacklo_epi8(sm, _mm_unpackhi_epi64(sm, sm));  // sc[0], m[0], sc[1], m[1], ...
  const __m512 scale = _mm512_cvtph_ps(_mm256_broadcastd_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))));
  _mm512_storeu_ps(dm, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(pairs))));  // d, dmin, d, ...
}

}  // namespace
}  // namespace lime::cpu
