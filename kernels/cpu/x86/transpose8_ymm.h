// The 8 x 8 fp32 transpose of the lane path's packing (matmul_lanes.h) in ymm registers, shared by the AVX2 and
// AVX-512 traits. Unnamed namespace: each ISA file that includes it compiles its own copy with its own flags.
#pragma once
#include <immintrin.h>

namespace lime::cpu {
namespace {

// d[j][i] = s[i][j] for i, j < 8.
inline void transpose8_ymm(const float* const* s, float* const* d) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s[i]);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // s[i][0] s[i+1][0] s[i][1] s[i+1][1] | [4] [5]
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // [2] [3] | [6] [7]
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);          // column 0 (and 4) of rows i..i+3
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);      // column 1 (5)
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // column 2 (6)
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);  // column 3 (7)
  }
  for (int j = 0; j < 4; ++j) {
    _mm256_storeu_ps(d[j], _mm256_permute2f128_ps(r[j], r[j + 4], 0x20));
    _mm256_storeu_ps(d[j + 4], _mm256_permute2f128_ps(r[j], r[j + 4], 0x31));
  }
}

}  // namespace
}  // namespace lime::cpu
