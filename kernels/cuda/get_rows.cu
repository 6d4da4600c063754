// Embedding lookup on the GPU, bitwise cpu::get_rows_ref: one block per id, its half-warps decode units of the row
// with the matmul decoders (kernels/cuda/dequant.cuh). An id outside [0, n_rows) writes a row of zeros.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dequant.cuh"

namespace lime::cuda {
namespace {

constexpr int k_half_warps = 8;

template <class Q>
__global__ void __launch_bounds__(16 * k_half_warps) get_rows_kernel(const uint8_t* table, int64_t row_bytes,
                                                                      int64_t n_rows, int64_t n_embd,
                                                                      const int32_t* ids, float* out) {
  const int lane = threadIdx.x & 15;
  const int hw = threadIdx.x >> 4;
  const int32_t id = ids[blockIdx.x];
  float* dst = out + static_cast<int64_t>(blockIdx.x) * n_embd;
  const bool valid = id >= 0 && id < n_rows;
  const uint8_t* row = table + (valid ? id : 0) * row_bytes;
  const int64_t n_units = (n_embd + Q::unit - 1) / Q::unit;
  for (int64_t u = hw; u < n_units; u += k_half_warps) {
    float w[Q::per_lane];
    if (valid) {
      Q::load(row, u, lane, n_embd, w);
    } else {
#pragma unroll
      for (int i = 0; i < Q::per_lane; ++i) w[i] = 0.f;
    }
#pragma unroll
    for (int i = 0; i < Q::per_lane; ++i) {
      const int64_t e = u * Q::unit + 16 * i + lane;
      if (e < n_embd) dst[e] = w[i];
    }
  }
}

}  // namespace

cuda_status get_rows(tensor_type t, const void* table, int64_t n_rows, int64_t n_embd, const int32_t* ids,
                     int64_t n_ids, float* out, stream_t stream) {
  const kstatus st = check_weights(t, table, n_embd);
  if (st != kstatus::ok) return status_of(st);
  if (n_rows < 0 || n_ids < 0) return status_of(kstatus::bad_shape);
  if (n_ids == 0 || n_embd == 0) return {};
  if (!table || !ids || !out) return status_of(kstatus::bad_argument);
  if (n_ids > 0x7fffffff) return status_of(kstatus::bad_shape);
  const int64_t row_bytes = static_cast<int64_t>(tensor_row_bytes(t, n_embd));
  visit_decoder(t, [&](auto q) {
    using Q = decltype(q);
    get_rows_kernel<Q><<<static_cast<unsigned>(n_ids), 16 * k_half_warps, 0, as_stream(stream)>>>(
        static_cast<const uint8_t*>(table), row_bytes, n_rows, n_embd, ids, out);
  });
  return launch_status();
}

}  // namespace lime::cuda
