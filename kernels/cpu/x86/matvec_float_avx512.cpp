// AVX-512 matvec (one activation column: decode) for f32, f16 and bf16 weights, bitwise equal to matmul_ref.
// Batches keep the tiles and lane path of matmul_tile.h.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"

// How it works. R weight rows at a time in row streams (for_row_streams), the 16 canonical lanes of a row in one
// zmm accumulator: 16 elements a step, one fused multiply-add per row, the activations loaded once for the R rows.
// A K tail (K % 16 elements) is one masked step: masked loads, and an fma whose other lanes keep the accumulator
// (the canonical masked tail). At the start of every k_chunk elements each row requests that stretch of itself,
// k_prefetch_skip bytes on (the stream's next row past its end): the burst of requests keeps the memory busy.
// The tiles (matmul_tile.h) this replaces for one column walk 8 adjacent rows with no software prefetch.
// Measured on one Zen 4 core from DRAM (in process, same bits, median of 5), against the tiles: f16 and bf16
// 1.05-2.5x (2048x768 f16 11 -> 28 GB/s), f32 1.05-1.38x; in L2 f32 1.27-1.88x, f16/bf16 1.0-1.07x. Requesting
// each row's successor instead (prefetch_ahead, as the legacy matvecs) ran long rows 0.85-0.95x: 4 streams of
// 8 KiB rows requested ahead fill the 32 KiB L1. Skips of 64-256 bytes measured alike, 512-2048 lower.

namespace lime::cpu {
namespace {

constexpr int64_t k_chunk = 256;         // elements between prefetch requests
constexpr size_t k_prefetch_skip = 128;  // bytes

struct f32_fmt {
  static constexpr size_t bytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static __m512 load_first(const uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

struct f16_fmt {
  static constexpr size_t bytes = 2;
  static __m512 load(const uint8_t* p) { return vec16_avx512::load_f16(p); }
  static __m512 load_first(const uint8_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};

struct bf16_fmt {
  static constexpr size_t bytes = 2;
  static __m512 load(const uint8_t* p) { return vec16_avx512::load_bf16(p); }
  // bf16 -> fp32: the 16 bits on top of a zero low half (exact, as bf16_to_fp32).
  static __m512 load_first(const uint8_t* p, __mmask16 m) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
};

// R rows (row r at w + r * rs, rb bytes each) of a matvec over k elements: y[r * ys] for r < R.
template <class F, int R>
void rows(const uint8_t* w, size_t rs, size_t /*rb*/, const float* x, int64_t k, float* y, int64_t ys) {
  __m512 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const int64_t k16 = k / 16 * 16;
  for (int64_t k0 = 0; k0 < k16; k0 += k_chunk) {
    const int64_t k1 = k16 - k0 < k_chunk ? k16 : k0 + k_chunk;
    for (int r = 0; r < R; ++r) {
      const char* next = reinterpret_cast<const char*>(w + r * rs + k_prefetch_skip);
      for (size_t o = static_cast<size_t>(k0) * F::bytes; o < static_cast<size_t>(k1) * F::bytes; o += 64)
        _mm_prefetch(next + o, _MM_HINT_T0);
    }
    for (int64_t i = k0; i < k1; i += 16) {
      const __m512 xv = _mm512_loadu_ps(x + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(F::load(w + r * rs + i * F::bytes), xv, acc[r]);
    }
  }
  if (k16 < k) {
    const __mmask16 m = static_cast<__mmask16>((1u << (k - k16)) - 1u);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + k16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      acc[r] = _mm512_mask3_fmadd_ps(F::load_first(w + r * rs + k16 * F::bytes, m), xv, acc[r], m);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) y[r * ys] = vec16_avx512::fold(acc[r]);
}

constexpr int k_rows = 4;

}  // namespace

kstatus matvec_float_avx512(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::f32: return run_matvec(a, 1, f32_fmt::bytes, k_rows, rows<f32_fmt, k_rows>, rows<f32_fmt, 1>);
    case tensor_type::f16: return run_matvec(a, 1, f16_fmt::bytes, k_rows, rows<f16_fmt, k_rows>, rows<f16_fmt, 1>);
    case tensor_type::bf16: return run_matvec(a, 1, bf16_fmt::bytes, k_rows, rows<bf16_fmt, k_rows>, rows<bf16_fmt, 1>);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
