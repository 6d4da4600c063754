// Reference matmul y = x * W^T over every computable weight type, in the canonical reduction order.
// Dequantizes at most one 256-element chunk of a weight row at a time; never allocates.
#include "kernels/cpu/matmul.h"

#include <cstddef>

#include "kernels/cpu/canonical.h"
#include "kernels/cpu/quants.h"

namespace lime::cpu {
namespace {

constexpr int64_t k_chunk_elems = 256;  // fp32 weights materialized at once (one K-quant block, 8 q8_0 blocks)
constexpr int64_t k_col_group = 8;      // columns fed from one dequantized chunk (lane_acc per column, on stack)

}  // namespace

kstatus matmul_ref(const matmul_args& a) {
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  const tensor_type_info& info = tensor_type_traits(a.w_type);
  if (!info.computable) return kstatus::unsupported_type;
  if (a.n_rows < 0 || a.k < 0 || a.n_cols < 0 || a.k % info.block_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;

  const size_t row_bytes = tensor_row_bytes(a.w_type, a.k);
  // A chunk is 256 elements, a whole number of blocks for every type (block_elems is 1, 32 or 256).
  const int64_t chunk = info.block_elems > k_chunk_elems ? info.block_elems : k_chunk_elems;
  const int64_t chunk_bytes = chunk / info.block_elems * info.block_bytes;
  float tmp[k_chunk_elems];

  for (int64_t r = a.row_begin; r < a.row_end; ++r) {
    const uint8_t* w_row = static_cast<const uint8_t*>(a.w) + static_cast<size_t>(r) * row_bytes;
    // Columns in groups: each (r, c) has its own lanes fed in K order, so grouping never changes a bit.
    for (int64_t c0 = 0; c0 < a.n_cols; c0 += k_col_group) {
      const int64_t nc = a.n_cols - c0 < k_col_group ? a.n_cols - c0 : k_col_group;
      lane_acc acc[k_col_group];
      for (int64_t k0 = 0; k0 < a.k; k0 += chunk) {
        const int64_t n = a.k - k0 < chunk ? a.k - k0 : chunk;
        const float* wv;
        if (a.w_type == tensor_type::f32) {
          wv = reinterpret_cast<const float*>(w_row) + k0;
        } else {
          kstatus st = dequantize_row(a.w_type, w_row + (k0 / chunk) * chunk_bytes, tmp, n);
          if (st != kstatus::ok) return st;
          wv = tmp;
        }
        const int lane0 = static_cast<int>(k0 % k_lanes);
        for (int64_t c = 0; c < nc; ++c) acc[c].fma_span(wv, a.x + (c0 + c) * a.k + k0, n, lane0);
      }
      for (int64_t c = 0; c < nc; ++c) a.y[(c0 + c) * a.n_rows + r] = acc[c].fold();
    }
  }
  return kstatus::ok;
}

}  // namespace lime::cpu
