// Elementwise ops on the GPU: swiglu (silu_f32 from kernels/cpu/math_impl.h, the CPU's own algorithm), add, and
// kv_store (K/V rows into the paged cache, fp16 by kernels/cpu/fp16.cpp's rounding). Grid-stride loops; each
// element is read before it is written, so outputs may alias inputs.
#include "kernels/cpu/math_impl.h"
#include "kernels/cuda/common.cuh"

namespace lime::cuda {
namespace {

constexpr int k_threads = 256;

__global__ void __launch_bounds__(k_threads) swiglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = cpu::math_impl::silu_f32(gate[i]) * up[i];
  }
}

__global__ void __launch_bounds__(k_threads) add_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = a[i] + b[i];
  }
}

// Block y of the grid (strided) takes token rows; threads take elements.
template <bool F16>
__global__ void __launch_bounds__(k_threads) kv_store_kernel(const float* src, void* const* dst, int64_t n_tok,
                                                             int64_t n_elems) {
  for (int64_t t = blockIdx.y; t < n_tok; t += gridDim.y) {
    const float* s = src + t * n_elems;
    void* d = dst[t];
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n_elems;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      if (F16) static_cast<uint16_t*>(d)[e] = fp32_to_fp16(s[e]);
      else static_cast<float*>(d)[e] = s[e];
    }
  }
}

}  // namespace

cuda_status swiglu(const float* gate, const float* up, float* out, int64_t n, stream_t stream) {
  if (n < 0) return status_of(kstatus::bad_shape);
  if (n == 0) return {};
  if (!gate || !up || !out) return status_of(kstatus::bad_argument);
  swiglu_kernel<<<grid_for(n, k_threads), k_threads, 0, as_stream(stream)>>>(gate, up, out, n);
  return launch_status();
}

cuda_status add(const float* a, const float* b, float* y, int64_t n, stream_t stream) {
  if (n < 0) return status_of(kstatus::bad_shape);
  if (n == 0) return {};
  if (!a || !b || !y) return status_of(kstatus::bad_argument);
  add_kernel<<<grid_for(n, k_threads), k_threads, 0, as_stream(stream)>>>(a, b, y, n);
  return launch_status();
}

cuda_status kv_store(const float* src, void* const* dst, int64_t n_tok, int64_t n_elems, tensor_type kv_type,
                     stream_t stream) {
  if (kv_type != tensor_type::f32 && kv_type != tensor_type::f16) return status_of(kstatus::unsupported_type);
  if (n_tok < 0 || n_elems < 0) return status_of(kstatus::bad_shape);
  if (n_tok == 0 || n_elems == 0) return {};
  if (!src || !dst) return status_of(kstatus::bad_argument);
  const unsigned gx = grid_for(n_elems, k_threads);
  const dim3 grid(gx < 64 ? gx : 64, static_cast<unsigned>(n_tok < 65535 ? n_tok : 65535));
  if (kv_type == tensor_type::f16) {
    kv_store_kernel<true><<<grid, k_threads, 0, as_stream(stream)>>>(src, dst, n_tok, n_elems);
  } else {
    kv_store_kernel<false><<<grid, k_threads, 0, as_stream(stream)>>>(src, dst, n_tok, n_elems);
  }
  return launch_status();
}

}  // namespace lime::cuda
