// Causal GQA attention over a paged fp32/fp16 KV cache on the GPU, bitwise cpu::attention_ref: one block per
// (token, head); scores by half-warps in the canonical order, then per 256-position chunk the sequential sums
// (one thread for l_c, thread d for o_c[d]) and the chunk merge in chunk order. Shared memory holds one chunk.
#include "kernels/cpu/math_impl.h"
#include "kernels/cuda/common.cuh"

namespace lime::cuda {
namespace {

constexpr int k_threads = 256;     // 16 half-warps; also the largest head_dim (thread d owns output element d)
constexpr int k_chunk = 256;       // cpu::k_attn_chunk
constexpr int k_half_warps = k_threads / 16;

template <bool F16>
__device__ inline float kv_at(const void* row, int32_t d) {
  if (F16) return fp16_to_fp32(static_cast<const uint16_t*>(row)[d]);
  return static_cast<const float*>(row)[d];
}

// Start of head kvh's row at position j in a block table.
template <bool F16>
__device__ inline const void* kv_row(const void* const* blocks, int32_t j, int32_t block_size, int64_t row_elems,
                                     int64_t head_off) {
  const int64_t off = static_cast<int64_t>(j % block_size) * row_elems + head_off;
  const void* b = blocks[j / block_size];
  if (F16) return static_cast<const uint16_t*>(b) + off;
  return static_cast<const float*>(b) + off;
}

// dot_canonical(q, k_j) * scale on one half-warp, returned to all 16 lanes; `valid` false gives a dummy value,
// but every lane of the warp must call (the shuffles span the whole warp).
template <bool F16>
__device__ inline float score(const float* q_s, const void* k, bool valid, int32_t head_dim, int lane, float scale) {
  float acc = 0.f;
  if (valid) {
    for (int32_t d = lane; d < head_dim; d += 16) acc = __fmaf_rn(q_s[d], kv_at<F16>(k, d), acc);
  }
  const float dot = __shfl_sync(0xffffffffu, fold16(acc), 0, 16);
  return dot * scale;
}

__device__ float block_max(float v, float* red) {
  for (int o = 16; o >= 1; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float m = red[0];
  for (int i = 1; i < k_threads / 32; ++i) m = fmaxf(m, red[i]);
  __syncthreads();
  return m;
}

// Maxima use fmaxf: which of -0 / +0 it returns is free, since a maximum only enters as s - m or m_c - M, whose
// zero sign exp_f32 ignores (exp(+-0) = 1); NaN scores give NaN outputs on both paths.
template <bool F16>
__global__ void __launch_bounds__(k_threads) attention_kernel(attention_args a) {
  __shared__ float q_s[k_threads];
  __shared__ float s_s[k_chunk];  // the chunk's scores, then its e_j
  __shared__ float red[k_threads / 32];
  __shared__ float l_s;
  const int32_t t = static_cast<int32_t>(blockIdx.x / a.n_head);
  const int32_t h = static_cast<int32_t>(blockIdx.x % a.n_head);
  const int32_t hd = a.head_dim;
  const int lane = threadIdx.x & 15;
  const int hw = threadIdx.x >> 4;
  const int d = threadIdx.x;  // output element of this thread (when d < hd)
  float* out = a.out + (static_cast<int64_t>(t) * a.n_head + h) * hd;

  const int32_t n_pos = a.n_pos[t];
  if (n_pos < 1 || n_pos > static_cast<int64_t>(a.max_blocks) * a.block_size) {
    if (d < hd) out[d] = __uint_as_float(0x7fc00000u);
    return;
  }
  if (d < hd) q_s[d] = a.q[(static_cast<int64_t>(t) * a.n_head + h) * hd + d];
  __syncthreads();
  const int32_t kvh = h / (a.n_head / a.n_head_kv);
  const int64_t head_off = static_cast<int64_t>(kvh) * hd;
  const void* const* kb = a.k_blocks + static_cast<int64_t>(t) * a.max_blocks;
  const void* const* vb = a.v_blocks + static_cast<int64_t>(t) * a.max_blocks;
  const int32_t n_chunks = (n_pos - 1) / k_chunk + 1;

  // M over all positions, needed before the first chunk is weighted (the CPU also scores twice).
  float m_all = 0.f;
  if (n_chunks > 1) {
    float m = -__uint_as_float(0x7f800000u);
    for (int32_t j0 = 0; j0 < n_pos; j0 += k_half_warps) {
      const int32_t j = j0 + hw;
      const bool valid = j < n_pos;
      const void* k = valid ? kv_row<F16>(kb, j, a.block_size, a.kv_row_elems, head_off) : nullptr;
      const float s = score<F16>(q_s, k, valid, hd, lane, a.scale);
      if (valid) m = fmaxf(m, s);
    }
    m_all = block_max(m, red);
  }

  float l_sum = 0.f, o_sum = 0.f;  // thread 0's L, thread d's O[d]
  for (int32_t c = 0; c < n_chunks; ++c) {
    const int32_t j0 = c * k_chunk;
    const int32_t n = n_pos - j0 < k_chunk ? n_pos - j0 : k_chunk;
    for (int32_t i0 = 0; i0 < n; i0 += k_half_warps) {
      const int32_t i = i0 + hw;
      const bool valid = i < n;
      const void* k = valid ? kv_row<F16>(kb, j0 + i, a.block_size, a.kv_row_elems, head_off) : nullptr;
      const float s = score<F16>(q_s, k, valid, hd, lane, a.scale);
      if (valid && lane == 0) s_s[i] = s;
    }
    __syncthreads();
    const float m_c = block_max(threadIdx.x < n ? s_s[threadIdx.x] : -__uint_as_float(0x7f800000u), red);
    if (n_chunks == 1) m_all = m_c;
    if (threadIdx.x < n) s_s[threadIdx.x] = cpu::math_impl::exp_f32(s_s[threadIdx.x] - m_c);
    __syncthreads();
    const float w_c = cpu::math_impl::exp_f32(m_c - m_all);
    if (threadIdx.x == 0) {
      float l_c = 0.f;
      for (int32_t i = 0; i < n; ++i) l_c = l_c + s_s[i];
      l_sum = __fmaf_rn(l_c, w_c, l_sum);
    }
    if (d < hd) {
      float o_c = 0.f;
      for (int32_t i = 0; i < n; ++i) {
        const void* v = kv_row<F16>(vb, j0 + i, a.block_size, a.kv_row_elems, head_off);
        o_c = __fmaf_rn(s_s[i], kv_at<F16>(v, d), o_c);
      }
      o_sum = __fmaf_rn(o_c, w_c, o_sum);
    }
    __syncthreads();  // s_s is rewritten by the next chunk
  }
  if (threadIdx.x == 0) l_s = l_sum;
  __syncthreads();
  if (d < hd) out[d] = o_sum / l_s;
}

}  // namespace

cuda_status attention(const attention_args& a, stream_t stream) {
  if (a.kv_type != tensor_type::f32 && a.kv_type != tensor_type::f16) return status_of(kstatus::unsupported_type);
  if (a.n_tok < 0) return status_of(kstatus::bad_shape);
  if (a.n_tok == 0) return {};
  if (!a.q || !a.k_blocks || !a.v_blocks || !a.n_pos || !a.out) return status_of(kstatus::bad_argument);
  if (a.block_size <= 0 || a.max_blocks <= 0 || a.n_head <= 0 || a.n_head_kv <= 0 || a.head_dim <= 0 ||
      a.head_dim > k_threads || a.n_head % a.n_head_kv != 0 ||
      a.kv_row_elems < static_cast<int64_t>(a.n_head_kv) * a.head_dim) {
    return status_of(kstatus::bad_shape);
  }
  const int64_t blocks = a.n_tok * a.n_head;
  if (blocks > 0x7fffffff || a.n_tok > 0x7fffffff) return status_of(kstatus::bad_shape);
  if (a.kv_type == tensor_type::f16) {
    attention_kernel<true><<<static_cast<unsigned>(blocks), k_threads, 0, as_stream(stream)>>>(a);
  } else {
    attention_kernel<false><<<static_cast<unsigned>(blocks), k_threads, 0, as_stream(stream)>>>(a);
  }
  return launch_status();
}

}  // namespace lime::cuda
