// Rotary embedding on the GPU, bitwise cpu::rope_ref: one thread per (token, head, pair) with the host's fp32
// (cos, sin) table; each product rounded, then the sum (no fma: nvcc runs with --fmad=false).
#include "kernels/cuda/common.cuh"

namespace lime::cuda {
namespace {

constexpr int k_threads = 256;

__global__ void __launch_bounds__(k_threads) rope_kernel(float* x, const float* cs, int64_t n_tok, int32_t n_head,
                                                         int32_t head_dim, int32_t n_rot, bool neox) {
  const int32_t half = n_rot / 2;
  const int64_t total = n_tok * n_head * half;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t i = static_cast<int32_t>(idx % half);
    const int64_t th = idx / half;  // token * n_head + head
    const int64_t t = th / n_head;
    const float c = cs[(t * half + i) * 2];
    const float s = cs[(t * half + i) * 2 + 1];
    float* xh = x + th * head_dim;
    const int32_t i0 = neox ? i : 2 * i;
    const int32_t i1 = neox ? i + half : 2 * i + 1;
    const float x0 = xh[i0], x1 = xh[i1];
    const float p00 = x0 * c, p11 = x1 * s, p01 = x0 * s, p10 = x1 * c;
    xh[i0] = p00 - p11;
    xh[i1] = p01 + p10;
  }
}

}  // namespace

cuda_status rope(float* x, const float* cs, int64_t n_tok, int32_t n_head, int32_t head_dim, int32_t n_rot, bool neox,
                 stream_t stream) {
  if (n_tok < 0 || n_head < 0 || head_dim < 0) return status_of(kstatus::bad_shape);
  if (n_rot < 0 || n_rot > head_dim || n_rot % 2 != 0) return status_of(kstatus::bad_shape);
  const int64_t total = n_tok * n_head * (n_rot / 2);
  if (total == 0) return {};
  if (!x || !cs) return status_of(kstatus::bad_argument);
  rope_kernel<<<grid_for(total, k_threads), k_threads, 0, as_stream(stream)>>>(x, cs, n_tok, n_head, head_dim, n_rot,
                                                                                neox);
  return launch_status();
}

}  // namespace lime::cuda
