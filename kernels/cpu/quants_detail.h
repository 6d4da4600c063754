// Per-type block (de)quantizers behind quants.h's dispatch, and small helpers they share. Internal to
// kernels/cpu: arguments are already checked (non-null, whole blocks); no dispatch, no validation here.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quants.h"

namespace lime::cpu::quants_detail {

// nb = number of blocks; src/dst point at nb packed blocks (any alignment) or nb * block_elems floats.
void dequantize_q4_0(const void* src, float* dst, int64_t nb);
void dequantize_q4_1(const void* src, float* dst, int64_t nb);
void dequantize_q5_0(const void* src, float* dst, int64_t nb);
void dequantize_q5_1(const void* src, float* dst, int64_t nb);
void dequantize_q8_0(const void* src, float* dst, int64_t nb);
void dequantize_q4_k(const void* src, float* dst, int64_t nb);
void dequantize_q5_k(const void* src, float* dst, int64_t nb);
void dequantize_q6_k(const void* src, float* dst, int64_t nb);

void quantize_q4_0(const float* src, void* dst, int64_t nb);
void quantize_q4_1(const float* src, void* dst, int64_t nb);
void quantize_q5_0(const float* src, void* dst, int64_t nb);
void quantize_q5_1(const float* src, void* dst, int64_t nb);
void quantize_q8_0(const float* src, void* dst, int64_t nb);
void quantize_q4_k(const float* src, void* dst, int64_t nb);
void quantize_q5_k(const float* src, void* dst, int64_t nb);
void quantize_q6_k(const float* src, void* dst, int64_t nb);

// Block i of a packed row, copied in and out with memcpy: rows may start at any address.
template <typename Block>
Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const unsigned char*>(src) + i * static_cast<int64_t>(sizeof(Block)), sizeof b);
  return b;
}

template <typename Block>
void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<unsigned char*>(dst) + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof b);
}

// v rounded to the nearest integer (ties to even, in the default rounding mode) and clamped to [lo, hi];
// NaN gives lo. Never converts an out-of-range float to int.
inline int round_clamp(float v, int lo, int hi) {
  const float r = std::nearbyint(v);
  if (!(r >= static_cast<float>(lo))) return lo;
  if (r > static_cast<float>(hi)) return hi;
  return static_cast<int>(r);
}

// The value a float takes once stored as fp16 (quantizers work with the scales they actually store).
inline float fp16_round(float f) { return fp16_to_fp32(fp32_to_fp16(f)); }

}  // namespace lime::cpu::quants_detail
