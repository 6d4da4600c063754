// Shared pieces of lime's CUDA kernels: statuses from cudaError_t, fp16/bf16 <-> fp32 in integer code (the same
// algorithms as kernels/cpu/fp16.cpp), and the canonical 16-lane fold on a half-warp. Device code and launch glue
// only; no allocation.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace lime::cuda {

// ---- statuses (host)

inline cuda_status status_of(kstatus k) {
  cuda_status s;
  s.k = k;
  s.message = kstatus_name(k);
  return s;
}

inline cuda_status status_of(cudaError_t e) {
  cuda_status s;
  if (e != cudaSuccess) {
    s.cuda_error = static_cast<int>(e);
    s.message = cudaGetErrorString(e);
  }
  return s;
}

// The status of the launch just made (configuration errors surface here; execution errors at a later sync).
inline cuda_status launch_status() { return status_of(cudaGetLastError()); }

inline cudaStream_t as_stream(stream_t s) { return static_cast<cudaStream_t>(s); }

// Blocks of `threads` covering n items, for 1-D elementwise kernels (grid-stride loops cover the rest).
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

// ---- fp16 / bf16 (device). Bit for bit kernels/cpu/fp16.cpp: exact widening, round-to-nearest-even narrowing.

__device__ inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (man << 13));  // inf, or NaN with its payload
  if (exp == 0) {
    if (man == 0) return __uint_as_float(sign);  // signed zero
    // Subnormal man * 2^-24: move the leading one up to bit 10 and lower the exponent to match.
    const int lz = __clz(man) - 21;  // man < 2^10: shifts that bring its top bit to bit 10
    man = (man << lz) & 0x3ffu;
    return __uint_as_float(sign | (static_cast<uint32_t>(-14 - lz + 127) << 23) | (man << 13));
  }
  return __uint_as_float(sign | ((exp - 15u + 127u) << 23) | (man << 13));
}

__device__ inline uint32_t shift_round_even(uint32_t v, int shift) {
  const uint32_t q = v >> shift;
  const uint32_t rem = v & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  return (rem > half || (rem == half && (q & 1u))) ? q + 1u : q;
}

__device__ inline uint16_t fp32_to_fp16(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t mag = u & 0x7fffffffu;
  if (mag > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((mag & 0x7fffffu) >> 13));  // NaN
  if (mag >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  const uint32_t e = mag >> 23;
  if (e < 113) {  // a half subnormal (or zero)
    const int shift = 126 - static_cast<int>(e);
    if (shift > 24) return static_cast<uint16_t>(sign);
    const uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    return static_cast<uint16_t>(sign | shift_round_even(m, shift));
  }
  const uint32_t v = ((e - 112u) << 23) | (mag & 0x7fffffu);
  return static_cast<uint16_t>(sign | shift_round_even(v, 13));
}

__device__ inline float bf16_to_fp32(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

// ---- canonical reduction helpers (kernels/cpu/canonical.h)

// Folds the 16 lane accumulators of each half-warp by halving (acc[l] += acc[l + w], w = 8, 4, 2, 1); lane 0 of
// the half-warp ends with the result. Every lane of the warp must call it (full-warp shuffles).
__device__ inline float fold16(float v) {
  for (int w = 8; w >= 1; w /= 2) v = v + __shfl_down_sync(0xffffffffu, v, w, 16);
  return v;
}

}  // namespace lime::cuda
