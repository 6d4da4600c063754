// NEON matmul/matvec y = x * W^T for every computable weight type, bitwise equal to matmul_ref: each (row, col)
// keeps the 16 canonical lanes (kernels/cpu/canonical.h) in 4 float32x4 registers (register j = lanes 4j..4j+3),
// one vfmaq_f32 per element, a masked K tail, the halving fold. Weights are decoded in registers (neon_dequant.h).
#include <arm_neon.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/arm/neon_dequant.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"

namespace lime::cpu {
namespace {

using neon::dec_bf16;
using neon::dec_f16;
using neon::dec_f32;

// Canonical fold of lanes 0..15: l += l+8 (registers 0+2, 1+3), then l += l+4, l += l+2, l += l+1.
inline float fold16(const float32x4_t acc[4]) {
  const float32x4_t t = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3]));
  const float32x2_t u = vadd_f32(vget_low_f32(t), vget_high_f32(t));
  return vget_lane_f32(u, 0) + vget_lane_f32(u, 1);
}

// The K % 16 trailing weights of a float row (starting at element k0) as exact fp32, zero padded to 16.
template <class Dec>
void float_tail(const uint8_t* row, int64_t k0, int t, float out[16]) {
  for (int i = 0; i < 16; ++i) out[i] = 0.f;
  for (int i = 0; i < t; ++i) {
    if constexpr (std::is_same_v<Dec, dec_f32>) {
      std::memcpy(&out[i], row + 4 * (k0 + i), sizeof(float));
    } else {
      uint16_t h;
      std::memcpy(&h, row + 2 * (k0 + i), sizeof h);
      out[i] = std::is_same_v<Dec, dec_f16> ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
  }
}

// One tile of R weight rows x C activation columns over the whole K. rows[r] is row r's packed data; x is
// column 0 of the tile (row stride k); y[c * y_stride + r] receives (row r, col c).
template <class Dec, int R, int C>
void tile(const uint8_t* const* rows, const float* x, int64_t k, float* y, int64_t y_stride) {
  float32x4_t acc[R][C][4];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      for (int j = 0; j < 4; ++j) acc[r][c][j] = vdupq_n_f32(0.f);

  constexpr int steps = Dec::block_elems / 16;
  const int64_t n_blocks = k / Dec::block_elems;
  for (int64_t b = 0; b < n_blocks; ++b) {
    typename Dec::block blk[R];
    for (int r = 0; r < R; ++r) blk[r] = Dec::load(rows[r] + b * Dec::block_bytes);
    for (int s = 0; s < steps; ++s) {
      const float* xs = x + b * Dec::block_elems + 16 * s;
      for (int r = 0; r < R; ++r) {
        float32x4_t w[4];
        Dec::get(blk[r], s, w);
        for (int c = 0; c < C; ++c) {
          for (int j = 0; j < 4; ++j) {
            acc[r][c][j] = vfmaq_f32(acc[r][c][j], w[j], vld1q_f32(xs + c * k + 4 * j));
          }
        }
      }
    }
  }

  // Float types: the K % 16 tail only touches lanes 0..t-1 (the others keep their value, sign of zero included).
  const int t = static_cast<int>(k - n_blocks * Dec::block_elems);
  if (t > 0) {
    const int64_t k0 = n_blocks * Dec::block_elems;
    static const uint32_t k_index[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    uint32x4_t mask[4];
    for (int j = 0; j < 4; ++j) mask[j] = vcltq_u32(vld1q_u32(k_index + 4 * j), vdupq_n_u32(static_cast<uint32_t>(t)));
    for (int c = 0; c < C; ++c) {
      float xt[16] = {};
      std::memcpy(xt, x + c * k + k0, static_cast<size_t>(t) * sizeof(float));
      for (int r = 0; r < R; ++r) {
        float wt[16];
        float_tail<Dec>(rows[r], k0, t, wt);
        for (int j = 0; j < 4; ++j) {
          const float32x4_t f = vfmaq_f32(acc[r][c][j], vld1q_f32(wt + 4 * j), vld1q_f32(xt + 4 * j));
          acc[r][c][j] = vbslq_f32(mask[j], f, acc[r][c][j]);
        }
      }
    }
  }

  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[c * y_stride + r] = fold16(acc[r][c]);
}

// Rows in groups of 4 (weights of a group stay in L1 across the batch). Columns in tiles of 4 per row, then the
// remaining columns one at a time over 4 rows at once (4 independent lane sets keep the fma pipes busy in a matvec).
template <class Dec>
void run(const matmul_args& a, size_t row_bytes) {
  const auto* w = static_cast<const uint8_t*>(a.w);
  for (int64_t r0 = a.row_begin; r0 < a.row_end; r0 += 4) {
    const int nr = a.row_end - r0 < 4 ? static_cast<int>(a.row_end - r0) : 4;
    const uint8_t* rows[4];
    for (int r = 0; r < nr; ++r) rows[r] = w + static_cast<size_t>(r0 + r) * row_bytes;
    int64_t c = 0;
    for (; c + 4 <= a.n_cols; c += 4) {
      for (int r = 0; r < nr; ++r) tile<Dec, 1, 4>(&rows[r], a.x + c * a.k, a.k, a.y + c * a.n_rows + r0 + r, a.n_rows);
    }
    for (; c < a.n_cols; ++c) {
      float* yc = a.y + c * a.n_rows + r0;
      if (nr == 4) {
        tile<Dec, 4, 1>(rows, a.x + c * a.k, a.k, yc, a.n_rows);
      } else {
        for (int r = 0; r < nr; ++r) tile<Dec, 1, 1>(&rows[r], a.x + c * a.k, a.k, yc + r, a.n_rows);
      }
    }
  }
}

}  // namespace

kstatus matmul_neon(const matmul_args& a) {
  // Same checks, in the same order, as matmul_ref.
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  const tensor_type_info& info = tensor_type_traits(a.w_type);
  if (!info.computable) return kstatus::unsupported_type;
  if (a.n_rows < 0 || a.k < 0 || a.n_cols < 0 || a.k % info.block_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;

  const size_t row_bytes = tensor_row_bytes(a.w_type, a.k);
  switch (a.w_type) {
    case tensor_type::f32: run<dec_f32>(a, row_bytes); break;
    case tensor_type::f16: run<dec_f16>(a, row_bytes); break;
    case tensor_type::bf16: run<dec_bf16>(a, row_bytes); break;
    case tensor_type::q8_0: run<neon::dec_q8_0>(a, row_bytes); break;
    case tensor_type::q4_0: run<neon::dec_q4_0>(a, row_bytes); break;
    case tensor_type::q4_1: run<neon::dec_q4_1>(a, row_bytes); break;
    case tensor_type::q5_0: run<neon::dec_q5_0>(a, row_bytes); break;
    case tensor_type::q5_1: run<neon::dec_q5_1>(a, row_bytes); break;
    case tensor_type::q4_k: run<neon::dec_q4_k>(a, row_bytes); break;
    case tensor_type::q5_k: run<neon::dec_q5_k>(a, row_bytes); break;
    case tensor_type::q6_k: run<neon::dec_q6_k>(a, row_bytes); break;
    default: return kstatus::unsupported_type;  // computable but without a NEON kernel: the caller uses matmul_ref
  }
  return kstatus::ok;
}

}  // namespace lime::cpu
