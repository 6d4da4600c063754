// AVX-512 (F/BW/VL/DQ) matmul/matvec for the K-quants q4_k, q5_k, q6_k, bitwise equal to matmul_ref.
// Self-contained: intrinsics and functions in an unnamed namespace only (see kernels/CMakeLists.txt).
// GCC 12's intrinsic headers trip its own (maybe-)uninitialized warnings (the `__Y = __Y` idiom of
// _mm*_undefined_*), attributed to the header lines; they say nothing about this file.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/matmul_tile.h"
#include "kernels/cpu/x86/kquant_scales_x86.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"
#include "kernels/cpu/x86/q6k_unpack_avx512.h"
#include "kernels/quant_blocks.h"

// How it works (as the AVX2 variant, with one zmm holding all 16 canonical lanes). A chunk of up to 4
// super-blocks of R rows is staged in L1 scratch: one byte per weight in element order (q4_k/q5_k: q; q6_k:
// q - 32); a staged chunk serves a block of up to 64 columns. q4_k/q5_k also get, per 32-element sub-block, the
// table of its 16 (32) possible weights,
//   table[q] = fmsub(d1, q, m1), d1 = d * sc, m1 = dmin * m,
// which is bit-identical to the reference's d1 * q - m1 because d * sc and d1 * q are exact in fp32 (one
// rounding of the same exact difference; IEEE gives an exact zero the same sign either way). The dot-product
// loop then looks 16 weights up with one vpermps (q4_k) / vpermt2ps (q5_k) on the staged bytes and does one
// fma per weight. q6_k has 64 values per sub-block, so its weights are computed: (d * sc) * (float)(q - 32),
// two multiplies as in the reference. Each weight vector is reused across C columns. q4_k batches of up to
// k_kquant_few_cols columns go to its matvec kernel instead (matvec_kquant_avx512.cpp), and one column of q5_k
// and q6_k to matvec_kpipe_avx512.cpp. Batches from small::min_cols_for(type) columns stage these weights as fp32
// instead (matmul_small.h); wider ones take the lane path.

namespace lime::cpu {
namespace {

enum class kq { q4, q5, q6 };

constexpr int64_t k_qk = 256;                  // elements per super-block
constexpr int k_chunk_blocks = 4;              // super-blocks staged at once
constexpr int k_chunk = k_chunk_blocks * 256;  // elements per chunk
constexpr int k_groups = k_chunk / 16;         // 16-element groups per chunk
constexpr int k_subs = k_chunk / 32;           // 32-element sub-blocks per chunk (q4_k/q5_k)

template <kq T>
constexpr int64_t block_bytes() {
  return T == kq::q4 ? 144 : T == kq::q5 ? 176 : 210;
}

// One row's staged chunk.
struct stage {
  alignas(64) float table[k_subs][32];  // q4_k: [16] per sub-block; q5_k: [32]; unused for q6_k
  alignas(64) uint8_t q[k_chunk];       // q (q4_k/q5_k) or q - 32 as int8 (q6_k), element order
  alignas(64) float a[k_groups];        // q6_k: d * sc per 16 elements
};

float half_to_float(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

__m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
void store256(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }

// q4_k / q5_k: the weight tables of the 8 sub-blocks. d1 = d * sc and m1 = dmin * m come from the 6-bit scales
// and mins (kquant_scales_x86.h).
template <int NQ>
void stage_tables(const uint8_t* blk, float (*table)[32]) {
  const float d = half_to_float(blk);
  const float dmin = half_to_float(blk + 2);
  const k4_scale_words k = unpack_k4_scales(blk + 4);
  const __m128i sc = _mm_setr_epi32(static_cast<int>(k.sc_lo), static_cast<int>(k.sc_hi), 0, 0);
  const __m128i m = _mm_setr_epi32(static_cast<int>(k.m_lo), static_cast<int>(k.m_hi), 0, 0);
  alignas(32) float d1[8], m1[8];
  _mm256_store_ps(d1, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc))));
  _mm256_store_ps(m1, _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m))));
  const __m512 iota = _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f,
                                     14.f, 15.f);
  const __m512 iota16 = _mm512_add_ps(iota, _mm512_set1_ps(16.f));
  for (int j = 0; j < 8; ++j) {
    const __m512 dv = _mm512_set1_ps(d1[j]);
    const __m512 mv = _mm512_set1_ps(m1[j]);
    _mm512_store_ps(table[j], _mm512_fmsub_ps(dv, iota, mv));
    if (NQ == 32) _mm512_store_ps(table[j] + 16, _mm512_fmsub_ps(dv, iota16, mv));
  }
}

// Bit j of each qh byte moved to bit 4 (16-bit shifts: the mask keeps only bits that stayed in their byte).
template <int J>
__m256i q5_high_bit(__m256i qh) {
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  if (J <= 4) return _mm256_and_si256(_mm256_slli_epi16(qh, 4 - J), bit4);
  return _mm256_and_si256(_mm256_srli_epi16(qh, J - 4), bit4);
}

template <int C>
void stage_q5_chunk(const uint8_t* qs, __m256i qh, uint8_t* q) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i v = load256(qs + 32 * C);
  const __m256i lo = _mm256_and_si256(v, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
  store256(q + 64 * C, _mm256_or_si256(lo, q5_high_bit<2 * C>(qh)));
  store256(q + 64 * C + 32, _mm256_or_si256(hi, q5_high_bit<2 * C + 1>(qh)));
}

// One super-block of type T -> 256 staged bytes and its 8 tables (q4_k/q5_k) or 16 scales (q6_k).
template <kq T>
void stage_block(const uint8_t* blk, uint8_t* q, float (*table)[32], float* a) {
  if constexpr (T == kq::q4) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    stage_tables<16>(blk, table);
    const uint8_t* qs = blk + 16;
    for (int c = 0; c < 4; ++c) {  // qs[32c + l]: low nibble -> element 64c + l, high -> 64c + 32 + l
      const __m256i v = load256(qs + 32 * c);
      store256(q + 64 * c, _mm256_and_si256(v, low4));
      store256(q + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    }
  } else if constexpr (T == kq::q5) {
    stage_tables<32>(blk, table);
    const __m256i qh = load256(blk + 16);
    const uint8_t* qs = blk + 48;
    stage_q5_chunk<0>(qs, qh, q);
    stage_q5_chunk<1>(qs, qh, q);
    stage_q5_chunk<2>(qs, qh, q);
    stage_q5_chunk<3>(qs, qh, q);
  } else {
    q6k_unpack_scales(blk, a);
    q6k_unpack_half(blk, 0, reinterpret_cast<int8_t*>(q));
    q6k_unpack_half(blk, 1, reinterpret_cast<int8_t*>(q));
  }
}

// The exact fp32 weights of staged elements [16j, 16j + 16) (group j lies in sub-block j / 2).
template <kq T>
__m512 weights16(const stage& s, int j) {
  const __m128i b16 = _mm_load_si128(reinterpret_cast<const __m128i*>(s.q + 16 * j));
  if constexpr (T == kq::q4) {
    return _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(b16), _mm512_load_ps(s.table[j / 2]));
  } else if constexpr (T == kq::q5) {
    return _mm512_permutex2var_ps(_mm512_load_ps(s.table[j / 2]), _mm512_cvtepu8_epi32(b16),
                                  _mm512_load_ps(s.table[j / 2] + 16));
  } else {
    const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b16));
    return _mm512_mul_ps(_mm512_set1_ps(s.a[j]), qf);
  }
}

// Feeds n_groups staged groups of R rows into the R x C accumulators acc[r][c][16 lanes] (in memory between
// chunks) for the columns at x + c * ldx (x already offset to the chunk). Each lane gets its elements in K order.
// Columns come as base + stride: an array of column pointers was miscompiled by GCC 12.2 -O3 (ipa-modref) in the
// AVX2 twin of this file.
template <kq T, int R, int C>
void feed_chunk(const stage* st, const float* x, int64_t ldx, int n_groups, float* acc) {
  __m512 v[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) v[r][c] = _mm512_load_ps(acc + (r * C + c) * 16);
  for (int j = 0; j < n_groups; ++j) {
    __m512 w[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) w[r] = weights16<T>(st[r], j);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_loadu_ps(x + c * ldx + 16 * j);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) v[r][c] = _mm512_fmadd_ps(w[r], xv, v[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) _mm512_store_ps(acc + (r * C + c) * 16, v[r][c]);
}

// A group of nc < N columns.
template <kq T, int R, int N>
void feed_tail(int nc, const stage* st, const float* x, int64_t ldx, int n_groups, float* acc) {
  if constexpr (N > 1) {
    if (nc == N - 1) {
      feed_chunk<T, R, N - 1>(st, x, ldx, n_groups, acc);
    } else {
      feed_tail<T, R, N - 1>(nc, st, x, ldx, n_groups, acc);
    }
  }
}

// The canonical halving fold of the 16 lanes at l: 8, 4, 2, 1, lower lanes as first operands.
float fold16(const float* l) {
  const __m256 t8 = _mm256_add_ps(_mm256_load_ps(l), _mm256_load_ps(l + 8));
  const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
  const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

// Tile shape of a batch: 4 rows x 4 columns (16 accumulators, each weight vector used 4 times, each x vector 4
// times).
constexpr int k_mm_rows = 4;
constexpr int k_mm_cols = 4;
constexpr int k_col_block = 64;  // columns sharing one staging of a weight chunk

// Rows r0 .. r0 + R - 1 x all columns: for each block of up to 64 columns, the whole K chunk by chunk; each chunk
// of the R rows is staged once and fed to every C-column group of the block. (One column never comes here: the
// matvecs of matvec_kquant_avx512.cpp and matvec_kpipe_avx512.cpp take it.)
template <kq T, int R, int C>
void rows(const matmul_args& a, int64_t r0, stage* st) {
  const int64_t row_bytes = a.k / k_qk * block_bytes<T>();
  const uint8_t* w = static_cast<const uint8_t*>(a.w) + r0 * row_bytes;
  const int64_t next = R * row_bytes;  // offset of each row's successor: the row R on
  alignas(64) float acc[k_col_block * R * 16];  // group of columns [c, c + C): [R][C][16] at acc + c * R * 16
  for (int64_t cb = 0; cb < a.n_cols; cb += k_col_block) {
    const int64_t nc = a.n_cols - cb < k_col_block ? a.n_cols - cb : k_col_block;
    std::memset(acc, 0, sizeof(float) * nc * R * 16);
    for (int64_t k0 = 0; k0 < a.k; k0 += k_chunk) {
      const int nb = static_cast<int>((a.k - k0 < k_chunk ? a.k - k0 : k_chunk) / k_qk);
      for (int r = 0; r < R; ++r) {
        const uint8_t* src = w + r * row_bytes + (k0 / k_qk) * block_bytes<T>();
        // The same chunk of each row's successor, requested now (as in the AVX2 twin): without it a matvec spends
        // most of its staging waiting for the weights (measured on a Xeon: the staging loads' stalls were 3x the
        // time of the fmas).
        for (int64_t o = 0; o < nb * block_bytes<T>(); o += 64)
          _mm_prefetch(reinterpret_cast<const char*>(src + next + o), _MM_HINT_T0);
        for (int i = 0; i < nb; ++i) {
          stage_block<T>(src + i * block_bytes<T>(), st[r].q + i * k_qk, st[r].table + 8 * i, st[r].a + 16 * i);
        }
      }
      const float* x = a.x + cb * a.k + k0;
      int64_t c = 0;
      for (; c + C <= nc; c += C) feed_chunk<T, R, C>(st, x + c * a.k, a.k, nb * 16, acc + c * R * 16);
      if (c < nc) feed_tail<T, R, C>(static_cast<int>(nc - c), st, x + c * a.k, a.k, nb * 16, acc + c * R * 16);
    }
    for (int64_t c = 0; c < nc; c += C) {
      const int64_t cg = nc - c < C ? nc - c : C;
      for (int r = 0; r < R; ++r) {
        for (int64_t j = 0; j < cg; ++j) {
          a.y[(cb + c + j) * a.n_rows + r0 + r] = fold16(acc + c * R * 16 + (r * cg + j) * 16);
        }
      }
    }
  }
}

// Rows [0, n_rows) of the weights at w -> out [n_rows, k] fp32, the exact values weights16 feeds the tiles.
template <kq T>
void dequantize_rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t k, stage& st, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t i = 0; i < k / k_qk; ++i) {
      stage_block<T>(w + r * row_bytes + i * block_bytes<T>(), st.q, st.table, st.a);
      float* o = out + r * k + i * k_qk;
      for (int j = 0; j < k_qk / 16; ++j) _mm512_storeu_ps(o + 16 * j, weights16<T>(st, j));
    }
  }
}

template <kq T>
kstatus run(const matmul_args& a) {
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.n_cols < 0 || a.k % k_qk != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  // Batches wide enough for the lane path (matmul_lanes.h): rows dequantized a row block at a time.
  if (a.n_cols > 1) {
    const uint8_t* w = static_cast<const uint8_t*>(a.w);
    const int64_t rb = a.k / k_qk * block_bytes<T>();
    stage one;
    const bool done = tile::run_dequantized_with<vec16_avx512>(a, [&](int64_t r0, int64_t n_rows, float* rows) {
      dequantize_rows<T>(w + r0 * rb, rb, n_rows, a.k, one, rows);
    });
    if (done) return kstatus::ok;
    // Smaller batches: rows staged a K chunk at a time as exact fp32 weights (matmul_small.h).
    const small::layout lo{w, static_cast<size_t>(rb), k_qk, block_bytes<T>()};
    auto stage_rows = [&](const uint8_t* rows, int n_rows, int64_t n, float* out) {
      dequantize_rows<T>(rows, rb, n_rows, n, one, out);
    };
    const bool small_done = small::run<vec16_avx512>(a, lo, stage_rows);
    if (small_done) return kstatus::ok;
  }
  stage st[k_mm_rows];
  int64_t r = a.row_begin;
  for (; r + k_mm_rows <= a.row_end; r += k_mm_rows) rows<T, k_mm_rows, k_mm_cols>(a, r, st);
  for (; r < a.row_end; ++r) rows<T, 1, k_mm_cols>(a, r, st);
  return kstatus::ok;
}

}  // namespace

kstatus matmul_kquant_avx512(const matmul_args& a) {
  if (a.w_type == tensor_type::q4_k && a.n_cols >= 1 && a.n_cols <= k_kquant_few_cols) return matvec_kquant_avx512(a);
  if ((a.w_type == tensor_type::q5_k || a.w_type == tensor_type::q6_k) && a.n_cols == 1) return matvec_kpipe_avx512(a);
  switch (a.w_type) {
    case tensor_type::q4_k: return run<kq::q4>(a);
    case tensor_type::q5_k: return run<kq::q5>(a);
    case tensor_type::q6_k: return run<kq::q6>(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
