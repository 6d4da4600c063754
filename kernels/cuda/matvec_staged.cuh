// Decode matvec (1 to 4 columns) in the canonical order, bitwise cpu::matmul_ref: a half-warp owns one weight row and
// lane l runs the fma chain over k = l, l + 16, ... as matmul.cu's kernels do, but the row reaches the lanes through a
// ring of shared-memory stages filled by 16-byte asynchronous copies (cp.async), so each warp keeps a few KiB of its
// rows in flight instead of one narrow load per lane. Included by matmul.cu only.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dequant.cuh"

namespace lime::cuda {
namespace staged {

constexpr int k_rows = 8;                    // half-warps per block, one weight row each
constexpr int k_threads = 16 * k_rows;
constexpr int k_stages = 3;                  // ring depth: k_stages - 1 chunks of each row in flight while one is used
constexpr int k_stage_bytes = 1024;          // a row's bytes per stage, at most (whole units)
constexpr int k_row_stride = k_stage_bytes + 32;  // + the 16-byte alignment slack at both ends of a chunk

struct alignas(16) ring_slot {  // one row's chunk: 16-byte aligned for cp.async
  uint8_t b[k_row_stride];
};

// 16 bytes global -> shared without the registers (sm_80+); a plain copy elsewhere (scripts/cuda-emu's host build).
__device__ inline void copy16_async(uint8_t* dst, const uint8_t* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src) : "memory");
#else
  std::memcpy(dst, src, 16);
#endif
}

__device__ inline void async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of this thread's committed copy groups are still in flight.
template <int N>
__device__ inline void async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Copies bytes [a, b) of a row into dst as the 16-byte pieces that cover them: dst[0] holds byte floor16(a). Pieces
// reaching past the tensor's end (end, 2-byte aligned) are copied 2 bytes at a time up to end, so nothing outside the
// weights is read except the few bytes before a row's start inside the same 16-byte piece (same allocation: device
// and host buffers start 16-byte aligned). The 16 lanes of the half-warp take every 16th piece.
__device__ inline void stage_row(uint8_t* dst, const uint8_t* a, const uint8_t* b, const uint8_t* end, int lane) {
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a) & ~uintptr_t{15};
  const uintptr_t b0 = (reinterpret_cast<uintptr_t>(b) + 15) & ~uintptr_t{15};
  const uintptr_t e = reinterpret_cast<uintptr_t>(end);
  for (uintptr_t p = a0 + 16 * static_cast<uintptr_t>(lane); p < b0; p += 16 * 16) {
    uint8_t* d = dst + (p - a0);
    if (p + 16 <= e) {
      copy16_async(d, reinterpret_cast<const uint8_t*>(p));
    } else {
      for (uintptr_t q = p; q < e; q += 2) {
        *reinterpret_cast<uint16_t*>(d + (q - p)) = *reinterpret_cast<const uint16_t*>(q);
      }
    }
  }
}

// K-quant units with their sub-block scales decoded once per half-warp instead of once per lane: lane j computes
// scale entry j with the decoder's own operations and the 16 lanes read them with shuffles, so every value keeps its
// bits (kernels/cuda/dequant.cuh has the layouts). Every lane of the warp must call (full-warp shuffles).
template <bool Q5>
__device__ inline void load_k_type1_shared(const uint8_t* row, int64_t u, int lane, float* w) {
  const uint8_t* b = row + u * k_type1_decoder<Q5>::bytes;
  uint8_t sc, m;
  k4_scale_min(lane & 7, b + 4, &sc, &m);
  const float v = lane < 8 ? ld_half(b) * small_uint_to_float(sc) : ld_half(b + 2) * small_uint_to_float(m);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (Q5 ? 48 : 16);
  const int qh0 = Q5 ? qh[lane] : 0, qh1 = Q5 ? qh[lane + 16] : 0;
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const float d1 = __shfl_sync(0xffffffffu, v, s, 16);      // d * sc of sub-block s
    const float m1 = __shfl_sync(0xffffffffu, v, 8 + s, 16);  // dmin * m of sub-block s
    k_type1_decoder<Q5>::sub_block(qs, qh0, qh1, s, lane, d1, m1, w);
  }
}

__device__ inline void load_q6_k_shared(const uint8_t* row, int64_t u, int lane, float* w) {
  const uint8_t* b = row + u * q6_k_decoder::unit_bytes;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float v = ld_half(b + 208) * small_uint_minus(scales[lane] + 128, 128);  // d * scales[lane]
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    w[i] = __shfl_sync(0xffffffffu, v, i, 16) * small_uint_minus(q6_k_decoder::quant(b, i, lane), 32);
  }
}

template <class Q>
__device__ inline void load_unit(const uint8_t* row, int64_t u, int lane, int64_t k, float* w) {
  if constexpr (std::is_same_v<Q, k_type1_decoder<false>>) load_k_type1_shared<false>(row, u, lane, w);
  else if constexpr (std::is_same_v<Q, k_type1_decoder<true>>) load_k_type1_shared<true>(row, u, lane, w);
  else if constexpr (std::is_same_v<Q, q6_k_decoder>) load_q6_k_shared(row, u, lane, w);
  else Q::load(row, u, lane, k, w);
}

// Grid: x over groups of k_rows rows, y over groups of NC columns. Each stage holds S whole units of every row of the
// block; a lane's chain still runs unit by unit, i by i, so the staging never changes a bit of y.
template <class Q, int NC>
__global__ void __launch_bounds__(k_threads) matvec_kernel(const uint8_t* __restrict__ w, int64_t row_bytes,
                                                           int64_t n_rows, int64_t k, const float* __restrict__ x,
                                                           int64_t n_cols, float* __restrict__ y, int64_t y_stride) {
  constexpr int S = k_stage_bytes / Q::unit_bytes > 0 ? k_stage_bytes / Q::unit_bytes : 1;  // units per stage
  static_assert(S * Q::unit_bytes <= k_stage_bytes, "a stage must fit its ring slot");
  __shared__ ring_slot ring[k_stages][k_rows];
  const int lane = threadIdx.x & 15, hw = threadIdx.x >> 4;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * k_rows + hw;
  const bool active = row < n_rows;
  const uint8_t* w_row = w + (active ? row : 0) * row_bytes;
  const uint8_t* w_end = w + n_rows * row_bytes;
  const int64_t n_units = (k + Q::unit - 1) / Q::unit;
  const int64_t n_stages = (n_units + S - 1) / S;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * NC;
  const float* xc[NC];
#pragma unroll
  for (int c = 0; c < NC; ++c) xc[c] = x + (c0 + c < n_cols ? c0 + c : c0) * k;
  float acc[NC];
#pragma unroll
  for (int c = 0; c < NC; ++c) acc[c] = 0.f;

  auto units_in = [&](int64_t st) { return n_units - st * S < S ? static_cast<int>(n_units - st * S) : S; };
  auto issue = [&](int64_t st) {
    if (st < n_stages) {  // an inactive half-warp (past n_rows) stages row 0: its lanes still shuffle
      const uint8_t* a = w_row + st * S * Q::unit_bytes;
      stage_row(ring[st % k_stages][hw].b, a, a + units_in(st) * Q::unit_bytes, w_end, lane);
    }
    async_commit();  // an empty group keeps the wait count uniform
  };
  for (int st = 0; st < k_stages - 1; ++st) issue(st);
  for (int64_t st = 0; st < n_stages; ++st) {
    async_wait<k_stages - 2>();  // this lane's pieces of stage st have landed
    __syncwarp();                // ... and every lane's; all are done reading the slot the next issue refills
    issue(st + k_stages - 1);
    const int64_t u0 = st * S;
    const uint8_t* srow = ring[st % k_stages][hw].b + (reinterpret_cast<uintptr_t>(w_row + u0 * Q::unit_bytes) & 15);
    const int64_t k_rel = k - u0 * Q::unit;  // elements of the row from this stage on
    if (k_rel >= static_cast<int64_t>(S) * Q::unit) {  // a full stage: no lane is past k
#pragma unroll 4
      for (int uu = 0; uu < S; ++uu) {
        float wv[Q::per_lane];
        load_unit<Q>(srow, uu, lane, k_rel, wv);
#pragma unroll
        for (int i = 0; i < Q::per_lane; ++i) {
          const int64_t e = (u0 + uu) * Q::unit + 16 * i + lane;
#pragma unroll
          for (int c = 0; c < NC; ++c) acc[c] = __fmaf_rn(wv[i], __ldg(xc[c] + e), acc[c]);
        }
      }
    } else {  // the last stage: a plain type's partial unit masks the lanes past k (never feeds them zeros)
      const int units = units_in(st);
      for (int uu = 0; uu < units; ++uu) {
        float wv[Q::per_lane];
        load_unit<Q>(srow, uu, lane, k_rel, wv);
#pragma unroll
        for (int i = 0; i < Q::per_lane; ++i) {
          const int64_t e = (u0 + uu) * Q::unit + 16 * i + lane;
          if (e < k) {
#pragma unroll
            for (int c = 0; c < NC; ++c) acc[c] = __fmaf_rn(wv[i], __ldg(xc[c] + e), acc[c]);
          }
        }
      }
    }
  }
  async_wait<0>();
#pragma unroll
  for (int c = 0; c < NC; ++c) acc[c] = fold16(acc[c]);
  if (active && lane == 0) {
#pragma unroll
    for (int c = 0; c < NC; ++c) {
      if (c0 + c < n_cols) y[(c0 + c) * y_stride + row] = acc[c];
    }
  }
}

template <class Q, int NC>
void launch_matvec(const matmul_args& a, cudaStream_t s) {
  const int64_t row_blocks = (a.n_rows + k_rows - 1) / k_rows;
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>((a.n_cols + NC - 1) / NC));
  matvec_kernel<Q, NC><<<grid, k_threads, 0, s>>>(static_cast<const uint8_t*>(a.w),
                                                  static_cast<int64_t>(tensor_row_bytes(a.w_type, a.k)), a.n_rows, a.k,
                                                  a.x, a.n_cols, a.y, a.y_stride > 0 ? a.y_stride : a.n_rows);
}

}  // namespace staged
}  // namespace lime::cuda
