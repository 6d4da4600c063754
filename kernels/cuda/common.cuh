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

// The magnitude's bits moved to a float's exponent and mantissa fields are the value times 2^-112, exactly, for
// normal and subnormal halves alike (no flush to zero: -ftz=false), so one multiply by 2^112 finishes the widening;
// inf and NaN keep all-ones exponents and their payload.
__device__ inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t mag = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const float v = (h & 0x7c00u) == 0x7c00u ? __uint_as_float(mag | 0x7f800000u) : __uint_as_float(mag) * 0x1p112f;
  return __uint_as_float(__float_as_uint(v) | sign);
}

// (float)v for 0 <= v < 2^23, exactly, on the integer and fp32 add pipes rather than the conversion unit (which
// issues an eighth as many results a clock as the fma pipes on sm_90): the float with bits 0x4b000000 | v is 2^23 + v.
__device__ inline float small_uint_to_float(int v) { return __int_as_float(0x4b000000 | v) - 8388608.0f; }

// (float)(v - off) exactly, for 0 <= v, off < 2^23: both terms lie in [2^23, 2^24), so their difference is exact,
// and v == off gives +0 as the conversion of 0 does.
__device__ inline float small_uint_minus(int v, int off) {
  return __int_as_float(0x4b000000 | v) - __int_as_float(0x4b000000 | off);
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
