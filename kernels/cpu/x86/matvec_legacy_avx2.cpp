// AVX2+FMA+F16C matvec (one activation column: decode) for q4_0 and q8_0, hand-scheduled for 16 ymm registers;
// bitwise equal to matmul_ref. Batches (n_cols > 1) keep the generic tile of matmul_tile.h.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"

// How it works. R weight rows at a time, 16 canonical lanes per row in two ymm accumulators (lanes 0-7, 8-15):
// 2R independent fma chains keep both FMA pipes busy. Every 8 blocks, the R rows' fp16 scales are gathered with
// scalar integer loads (integer ALUs, off the vector pipes), converted 8 at a time with F16C and parked in a small
// L1 array, from which each block broadcasts its scale (a load, no shuffle). Activations are read as memory
// operands of the fmas. Per block and row: 2 zero-extending loads, 4 nibble/byte ops, 4 converts, 4 dequantizing
// fmas (q4_0) or multiplies (q8_0) and 4 accumulating fmas.
// Values, in the reference's operations:
//   q4_0: (float)(q - 8) * d as fma(q, d, -8d): q*d and 8d are exact and so is their difference, so the single
//         rounding returns the reference's value (a zero's sign may differ, which no accumulation can see: lanes
//         start at +0 and an exact zero product keeps +0). A non-finite d would give inf - inf: chunks holding
//         one take the reference's own (q - 8) then multiply.
//   q8_0: (float)q * d, one multiply as the reference.

namespace lime::cpu {
namespace {

constexpr int k_chunk = 8;  // blocks whose scales are converted together

inline uint16_t read_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Per-block constants of n <= 8 blocks (block j's fp16 scale at p + j * stride), lane j of each array: d, d / 16
// and -8 d (all exact for finite d). True when every d is finite.
struct chunk_scales {
  alignas(32) float d[k_chunk];
  alignas(32) float d16[k_chunk];
  alignas(32) float off[k_chunk];
};

inline bool load_scales(const uint8_t* p, size_t stride, int n, chunk_scales& s) {
  __m128i h;
  if (n == k_chunk) {
    // Eight 16-bit loads packed with shifts in general registers (integer ALUs, not the vector pipes).
    auto at = [&](int j) { return static_cast<uint64_t>(read_u16(p + j * stride)); };
    const uint64_t lo = at(0) | at(1) << 16 | at(2) << 32 | at(3) << 48;
    const uint64_t hi = at(4) | at(5) << 16 | at(6) << 32 | at(7) << 48;
    h = _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
  } else {
    alignas(16) uint16_t t[k_chunk] = {};
    for (int j = 0; j < n; ++j) t[j] = read_u16(p + j * stride);
    h = _mm_load_si128(reinterpret_cast<const __m128i*>(t));
  }
  const __m256 v = _mm256_cvtph_ps(h);
  _mm256_store_ps(s.d, v);
  _mm256_store_ps(s.d16, _mm256_mul_ps(v, _mm256_set1_ps(0.0625f)));
  _mm256_store_ps(s.off, _mm256_mul_ps(v, _mm256_set1_ps(-8.0f)));
  const __m256 abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  return _mm256_movemask_ps(_mm256_cmp_ps(abs, _mm256_set1_ps(__builtin_inff()), _CMP_LT_OQ)) == 0xff;
}

inline __m256i zx8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256i sx8(const uint8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }

// The canonical halving fold of lanes lo (0-7) and hi (8-15).
inline float fold16(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

struct q4_0_fmt {
  static constexpr size_t bytes = 18;
  // Block j of a row: elements 0-7, 8-15 (low nibbles of bytes 0-7, 8-15) and 16-23, 24-31 (high nibbles).
  // The high nibble is taken in place (16 q, an and instead of a shift: shifts share two pipes with the
  // zero-extending loads) and scaled by d / 16: 16q * (d / 16) is the same exact product q * d.
  template <bool Finite>
  static void feed(const uint8_t* blk, const chunk_scales& s, int j, const float* x, __m256& lo, __m256& hi) {
    const __m256i v0 = zx8(blk + 2), v1 = zx8(blk + 10);
    const __m256i m_lo = _mm256_set1_epi32(0x0f), m_hi = _mm256_set1_epi32(0xf0);
    const __m256 d = _mm256_broadcast_ss(&s.d[j]);
    __m256 w0, w1, w2, w3;
    if constexpr (Finite) {
      const __m256 d16 = _mm256_broadcast_ss(&s.d16[j]), off = _mm256_broadcast_ss(&s.off[j]);
      w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, m_lo)), d, off);
      w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, m_lo)), d, off);
      w2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, m_hi)), d16, off);
      w3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, m_hi)), d16, off);
    } else {  // the reference's (q - 8) * d
      const __m256i m8 = _mm256_set1_epi32(8);
      w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, m_lo), m8)), d);
      w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, m_lo), m8)), d);
      w2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), m8)), d);
      w3 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), m8)), d);
    }
    lo = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), lo);
    hi = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), hi);
    lo = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + 16), lo);
    hi = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + 24), hi);
  }
};

struct q8_0_fmt {
  static constexpr size_t bytes = 34;
  template <bool Finite>
  static void feed(const uint8_t* blk, const chunk_scales& s, int j, const float* x, __m256& lo, __m256& hi) {
    const __m256 d = _mm256_broadcast_ss(&s.d[j]);
    lo = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sx8(blk + 2)), d), _mm256_loadu_ps(x), lo);
    hi = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sx8(blk + 10)), d), _mm256_loadu_ps(x + 8), hi);
    lo = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sx8(blk + 18)), d), _mm256_loadu_ps(x + 16), lo);
    hi = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sx8(blk + 26)), d), _mm256_loadu_ps(x + 24), hi);
  }
};

// n blocks of R rows (row r at w + r * rs) into the rows' lanes. Always inlined: as a call, GCC 12 keeps the
// accumulators in memory (each fma a load and a store); q8_0 measured 11.6 -> 7.5 cycles per block and row.
template <class F, int R, bool Finite>
__attribute__((always_inline)) inline void feed_chunk(const uint8_t* w, size_t rs, const chunk_scales* sc,
                                                     const float* x, int n, __m256* lo, __m256* hi) {
  for (int j = 0; j < n; ++j) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) F::template feed<Finite>(w + r * rs + j * F::bytes, sc[r], j, x + 32 * j, lo[r], hi[r]);
  }
}

// R rows (row r at w + r * rs, rb bytes each) of a matvec over nb blocks: y[r * ys] for r < R.
template <class F, int R>
void rows(const uint8_t* w, size_t rs, size_t rb, const float* x, int64_t nb, float* y, int64_t ys) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  chunk_scales sc[R];
  for (int64_t b0 = 0; b0 < nb; b0 += k_chunk) {
    const int n = nb - b0 < k_chunk ? static_cast<int>(nb - b0) : k_chunk;
    bool finite = true;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) finite &= load_scales(w + r * rs + b0 * F::bytes, F::bytes, n, sc[r]);
    const uint8_t* wb = w + b0 * F::bytes;
    const float* xb = x + b0 * 32;
    // The hardware prefetchers alone leave a single core at a third of its streaming rate here (measured): ask
    // for the same chunk of each row's successor in its stream (for_row_streams) while this one computes.
    for (int r = 0; r < R; ++r) {
      const char* next = reinterpret_cast<const char*>(wb + r * rs + rb);
      for (size_t o = 0; o < n * F::bytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
    }
    if (finite) feed_chunk<F, R, true>(wb, rs, sc, xb, n, lo, hi);
    else feed_chunk<F, R, false>(wb, rs, sc, xb, n, lo, hi);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) y[r * ys] = fold16(lo[r], hi[r]);
}

constexpr int k_rows = 4;

}  // namespace

kstatus matvec_legacy_avx2(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::q4_0: return run_matvec(a, 32, q4_0_fmt::bytes, k_rows, rows<q4_0_fmt, k_rows>, rows<q4_0_fmt, 1>);
    case tensor_type::q8_0: return run_matvec(a, 32, q8_0_fmt::bytes, k_rows, rows<q8_0_fmt, k_rows>, rows<q8_0_fmt, 1>);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
