// The float-weight matvec (f32, f16, bf16; one activation column: decode) over a 16-lane vector type V
// (vec16_avx2.h / vec16_avx512.h), bitwise equal to matmul_ref. Include only from *_avx2.cpp / *_avx512.cpp after
// the V header: everything is in an unnamed namespace, compiled with each file's flags.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/matmul_tile.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"

// How it works. R weight rows at a time in row streams (for_row_streams), the 16 canonical lanes of a row in one V
// accumulator: 16 elements a step, one fused multiply-add per row, the activations loaded once for the R rows. A
// K tail (K % 16 elements) is one step over zero-padded copies with V::fma_first, which leaves the other lanes as
// they are (the canonical masked tail). Every step each row requests the line k_float_prefetch_bytes further on in
// itself (past its end: the next row in memory), the requests spread among the fmas. The tiles (matmul_tile.h)
// this replaces for one column walk 8 adjacent rows with no software prefetch: on one Zen 4 core from DRAM the
// first version of this kernel (a burst of requests 128 bytes on for every 256 elements) ran f16 and bf16
// 1.05-2.5x, f32 1.05-1.38x faster than the tiles. Against that burst, the spread requests on one Zen 5 core
// (in process, same bits, median of 3-5, from DRAM): f16 2048x768 37.0 -> 43.4 GFLOP/s, 768x2048 28-36 -> 42.3,
// 4096x4096 31.7 -> 36.4; bf16 4096x4096 31.6 -> 36.4; f32 0.99-1.2x; with AVX2 f16 1.26-1.3x and f32 1.08-1.23x.
// 128, 192, 256 and 384 bytes on measured within 5 % of each other (384 best for f16); requesting each row's
// successor instead (prefetch_ahead, as the legacy matvecs) ran long rows 0.85-0.95x on Zen 4: 4 streams of
// 8 KiB rows requested ahead fill the 32 KiB L1.

namespace lime::cpu {
namespace {
namespace float_matvec {

constexpr size_t k_float_prefetch_bytes = 384;  // how far on in its row each step's request is
constexpr int k_float_rows = 4;

// R rows (row r at w + r * rs) of a matvec over k elements: y[r * ys] for r < R. F: the tiles' float formats
// (tile::fmt_f32 / fmt_f16 / fmt_bf16), whose half() loads 16 exact fp32 weights.
template <class V, class F, int R>
void rows(const uint8_t* w, size_t rs, size_t /*rb*/, const float* x, int64_t k, float* y, int64_t ys) {
  typename V::f acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = V::zero();
  const int64_t k16 = k / 16 * 16;
  for (int64_t i = 0; i < k16; i += 16) {
    const typename V::f xv = V::load_f32(x + i);
    request_rows<R>(w + i * F::elem_bytes + k_float_prefetch_bytes, rs);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = V::fma(F::half({}, w + r * rs + i * F::elem_bytes, 0), xv, acc[r]);
  }
  if (const int n = static_cast<int>(k - k16); n > 0) {
    alignas(64) float xt[16] = {};
    std::memcpy(xt, x + k16, sizeof(float) * n);
    const typename V::f xv = V::load_f32(xt);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      alignas(64) uint8_t wt[64] = {};
      std::memcpy(wt, w + r * rs + k16 * F::elem_bytes, F::elem_bytes * n);
      acc[r] = V::fma_first(F::half({}, wt, 0), xv, acc[r], n);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) y[r * ys] = V::fold(acc[r]);
}

template <class V, class F>
kstatus run(const matmul_args& a) {
  return run_matvec(a, 1, F::elem_bytes, k_float_rows, rows<V, F, k_float_rows>, rows<V, F, 1>);
}

// One column of f32 / f16 / bf16 weights; unsupported_type otherwise.
template <class V>
kstatus matvec(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::f32: return run<V, tile::fmt_f32<V>>(a);
    case tensor_type::f16: return run<V, tile::fmt_f16<V>>(a);
    case tensor_type::bf16: return run<V, tile::fmt_bf16<V>>(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace float_matvec
}  // namespace
}  // namespace lime::cpu
