// rmsnorm and softmax rows on the GPU, bitwise cpu::rmsnorm_ref / cpu::softmax_ref: one block per row; the sums of
// squares and sums run in the canonical 16-lane order on 16 lanes; everything elementwise is spread over the block.
#include "kernels/cpu/math_impl.h"
#include "kernels/cuda/common.cuh"

namespace lime::cuda {
namespace {

constexpr int k_norm_threads = 256;     // rmsnorm: one block per row
constexpr int k_norm_chunk = 4096;      // floats of a row staged in shared memory at a time (a multiple of 16)
constexpr int k_softmax_threads = 256;  // softmax: one block per row

// y = (x * (1 / sqrt(dot_canonical(x, x) / n + eps))) * w, one block per row. The block stages the row in shared
// memory chunk by chunk (coalesced, all threads), and lanes 0-15 of warp 0 run the 16 canonical chains from there:
// a chain reading global memory one dependent load at a time was latency-bound (tens of microseconds a row). Each
// thread reads x[i] before writing y[i] at the same i, so x and y may alias.
__global__ void __launch_bounds__(k_norm_threads)
    rmsnorm_kernel(const float* x, const float* w, float* y, int64_t n, float eps) {
  __shared__ float xs[k_norm_chunk];
  __shared__ float dot_s;
  const int64_t row = blockIdx.x;
  const float* xr = x + row * n;
  float acc = 0.f;
  for (int64_t c0 = 0; c0 < n; c0 += k_norm_chunk) {
    const int m = static_cast<int>(n - c0 < k_norm_chunk ? n - c0 : k_norm_chunk);
    __syncthreads();  // the previous chunk's readers are done
    for (int i = threadIdx.x; i < m; i += k_norm_threads) xs[i] = xr[c0 + i];
    __syncthreads();
    if (threadIdx.x < 16) {  // chunks start at multiples of 16: lane l keeps chain i = l (mod 16)
#pragma unroll 8
      for (int i = threadIdx.x; i < m; i += 16) acc = __fmaf_rn(xs[i], xs[i], acc);
    }
  }
  if (threadIdx.x < 32) {  // both half-warps fold (full-warp shuffles); the second one's sum is unused
    acc = fold16(acc);
    if (threadIdx.x == 0) dot_s = acc;
  }
  __syncthreads();
  const float mean = dot_s / static_cast<float>(n);
  const float scale = 1.0f / sqrtf(mean + eps);
  float* yr = y + row * n;
  for (int64_t i = threadIdx.x; i < n; i += k_norm_threads) {
    const float v = xr[i] * scale;
    yr[i] = w ? v * w[i] : v;
  }
}

// Block-wide max of v over the block's threads (the result in every thread). fmaxf's choice between -0 and +0 is
// free: the maximum only enters as x - m, and x - (+0) and x - (-0) differ in the sign of a zero, whose exp_f32 is
// 1 either way. NaN inputs make every output NaN on both paths.
__device__ float block_max(float v, float* red) {
  for (int o = 16; o >= 1; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32;
  if ((threadIdx.x & 31) == 0) red[warp] = v;
  __syncthreads();
  float m = red[0];
  for (int i = 1; i < static_cast<int>(blockDim.x / 32); ++i) m = fmaxf(m, red[i]);
  __syncthreads();  // red may be reused
  return m;
}

// x[i] = exp_f32(x[i] - max) / sum_canonical(e), in place, one block per row.
__global__ void __launch_bounds__(k_softmax_threads) softmax_kernel(float* x, int64_t n) {
  __shared__ float red[k_softmax_threads / 32];
  __shared__ float sum_s;
  float* xr = x + static_cast<int64_t>(blockIdx.x) * n;
  float m = -__uint_as_float(0x7f800000u);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, xr[i]);
  m = block_max(m, red);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) xr[i] = cpu::math_impl::exp_f32(xr[i] - m);
  __syncthreads();  // the e values are in global memory, visible to the block after the barrier
  if (threadIdx.x < 32) {  // warp 0: both half-warps run the canonical sum (the second one's result is unused)
    const int lane = threadIdx.x & 15;
    float acc = 0.f;
    for (int64_t i = lane; i < n; i += 16) acc = acc + xr[i];
    acc = fold16(acc);
    if (threadIdx.x == 0) sum_s = acc;
  }
  __syncthreads();
  const float sum = sum_s;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) xr[i] = xr[i] / sum;
}

}  // namespace

cuda_status rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps, stream_t stream) {
  if (n_rows < 0 || n < 0) return status_of(kstatus::bad_shape);
  if (n_rows == 0 || n == 0) return {};  // cpu::rmsnorm_ref writes nothing for n <= 0
  if (!x || !y) return status_of(kstatus::bad_argument);
  if (n_rows > 0x7fffffff) return status_of(kstatus::bad_shape);
  rmsnorm_kernel<<<static_cast<unsigned>(n_rows), k_norm_threads, 0, as_stream(stream)>>>(x, w, y, n, eps);
  return launch_status();
}

cuda_status softmax(float* x, int64_t n_rows, int64_t n, stream_t stream) {
  if (n_rows < 0 || n < 0) return status_of(kstatus::bad_shape);
  if (n_rows == 0 || n == 0) return {};
  if (!x) return status_of(kstatus::bad_argument);
  if (n_rows > 0x7fffffff) return status_of(kstatus::bad_shape);
  softmax_kernel<<<static_cast<unsigned>(n_rows), k_softmax_threads, 0, as_stream(stream)>>>(x, n);
  return launch_status();
}

}  // namespace lime::cuda
