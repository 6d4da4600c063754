// NEON decoders of every computable weight type into 16 fp32 weights (4 x float32x4) per canonical step, with
// the reference dequantizers' operations in their order (kernels/cpu/quants_*.cpp, fp16.cpp). Included only by
// kernels/cpu/arm/*.cpp (aarch64, where NEON is baseline); never by shared code.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/quants.h"
#include "kernels/quant_blocks.h"

namespace lime::cpu::neon {

// fp16 bits -> fp32, exactly as fp16_to_fp32. The hardware conversion (FCVT, which ignores FZ16) is exact for
// every value except signaling NaNs, which it quiets; NaN inputs therefore go through the reference function.
inline float half_to_float(uint16_t h) {
  if ((h & 0x7fffu) > 0x7c00u) return fp16_to_fp32(h);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

inline uint16_t read_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// 16 small integers (u8 or s8 lanes) -> 4 x float32x4 (exact).
inline void u8_to_f32(uint8x16_t q, float32x4_t w[4]) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(q)), hi = vmovl_u8(vget_high_u8(q));
  w[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
  w[1] = vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo)));
  w[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
  w[3] = vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi)));
}
inline void s8_to_f32(int8x16_t q, float32x4_t w[4]) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
  w[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
  w[1] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo)));
  w[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
  w[3] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi)));
}

inline void scale(float32x4_t w[4], float d) {  // w = (float)q * d, one rounding (exact for these types)
  for (int j = 0; j < 4; ++j) w[j] = vmulq_n_f32(w[j], d);
}
inline void scale_add(float32x4_t w[4], float d, float m) {  // t = (float)q * d; w = t + m (no fma)
  const float32x4_t mv = vdupq_n_f32(m);
  for (int j = 0; j < 4; ++j) w[j] = vaddq_f32(vmulq_n_f32(w[j], d), mv);
}
inline void scale_sub(float32x4_t w[4], float d1, float m1) {  // t = d1 * (float)q; w = t - m1 (no fma)
  const float32x4_t mv = vdupq_n_f32(m1);
  for (int j = 0; j < 4; ++j) w[j] = vsubq_f32(vmulq_n_f32(w[j], d1), mv);
}

// Bit 4 (0x10) for the 16 elements e0 .. e0+15 of a q5_0/q5_1 block (e0 = 0 or 16): bit e of qh[4].
inline uint8x16_t q5_high_bits(const uint8_t* qh, int e0) {
  static const uint8_t k_bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bytes = vcombine_u8(vdup_n_u8(qh[e0 / 8]), vdup_n_u8(qh[e0 / 8 + 1]));
  return vandq_u8(vtstq_u8(bytes, vld1q_u8(k_bit)), vdupq_n_u8(0x10));
}

// ---- Decoders. Each has block_elems (a multiple of 16), block_bytes, a `block` struct decoded once per block
// (`load`) and `get(blk, s, w)` giving elements 16s .. 16s+15 of the block. Float types use 16-element pseudo
// blocks; their K tail (K % 16) is handled by the caller with scalar conversion.

struct dec_f32 {
  static constexpr int block_elems = 16, block_bytes = 64;
  struct block { const uint8_t* p; };
  static block load(const uint8_t* p) { return {p}; }
  static void get(const block& b, int, float32x4_t w[4]) {
    const float* f = reinterpret_cast<const float*>(b.p);  // f32 rows are 4-byte aligned tensor data
    for (int j = 0; j < 4; ++j) w[j] = vld1q_f32(f + 4 * j);
  }
};

struct dec_f16 {
  static constexpr int block_elems = 16, block_bytes = 32;
  struct block { const uint8_t* p; };
  static block load(const uint8_t* p) { return {p}; }
  static void get(const block& b, int, float32x4_t w[4]) {
    const uint16x8_t h0 = vld1q_u16(reinterpret_cast<const uint16_t*>(b.p));
    const uint16x8_t h1 = vld1q_u16(reinterpret_cast<const uint16_t*>(b.p) + 8);
    const uint16x8_t mag = vmaxq_u16(vandq_u16(h0, vdupq_n_u16(0x7fff)), vandq_u16(h1, vdupq_n_u16(0x7fff)));
    if (vmaxvq_u16(mag) > 0x7c00u) {  // a NaN among the 16: exact scalar conversion (keeps signaling NaNs)
      float t[16];
      for (int i = 0; i < 16; ++i) t[i] = fp16_to_fp32(read_u16(b.p + 2 * i));
      for (int j = 0; j < 4; ++j) w[j] = vld1q_f32(t + 4 * j);
      return;
    }
    w[0] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h0)));
    w[1] = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h0)));
    w[2] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h1)));
    w[3] = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h1)));
  }
};

struct dec_bf16 {
  static constexpr int block_elems = 16, block_bytes = 32;
  struct block { const uint8_t* p; };
  static block load(const uint8_t* p) { return {p}; }
  static void get(const block& b, int, float32x4_t w[4]) {  // bits << 16, as bf16_to_fp32
    const uint16x8_t h0 = vld1q_u16(reinterpret_cast<const uint16_t*>(b.p));
    const uint16x8_t h1 = vld1q_u16(reinterpret_cast<const uint16_t*>(b.p) + 8);
    w[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16));
    w[1] = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(h0), 16));
    w[2] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16));
    w[3] = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(h1), 16));
  }
};

// q8_0: (float)q * d.
struct dec_q8_0 {
  static constexpr int block_elems = 32, block_bytes = sizeof(block_q8_0);
  struct block { const uint8_t* qs; float d; };
  static block load(const uint8_t* p) { return {p + offsetof(block_q8_0, qs), half_to_float(read_u16(p))}; }
  static void get(const block& b, int s, float32x4_t w[4]) {
    s8_to_f32(vreinterpretq_s8_u8(vld1q_u8(b.qs + 16 * s)), w);
    scale(w, b.d);
  }
};

// Legacy 4/5-bit blocks. Step 0 is elements 0..15 (low nibbles of qs), step 1 elements 16..31 (high nibbles).
inline uint8x16_t legacy_nibbles(const uint8_t* qs, int s) {
  const uint8x16_t q = vld1q_u8(qs);
  return s == 0 ? vandq_u8(q, vdupq_n_u8(0x0f)) : vshrq_n_u8(q, 4);
}

// q4_0: (float)(q - 8) * d.
struct dec_q4_0 {
  static constexpr int block_elems = 32, block_bytes = sizeof(block_q4_0);
  struct block { const uint8_t* qs; float d; };
  static block load(const uint8_t* p) { return {p + offsetof(block_q4_0, qs), half_to_float(read_u16(p))}; }
  static void get(const block& b, int s, float32x4_t w[4]) {
    s8_to_f32(vsubq_s8(vreinterpretq_s8_u8(legacy_nibbles(b.qs, s)), vdupq_n_s8(8)), w);
    scale(w, b.d);
  }
};

// q4_1: t = (float)q * d; t + m.
struct dec_q4_1 {
  static constexpr int block_elems = 32, block_bytes = sizeof(block_q4_1);
  struct block { const uint8_t* qs; float d, m; };
  static block load(const uint8_t* p) {
    return {p + offsetof(block_q4_1, qs), half_to_float(read_u16(p)), half_to_float(read_u16(p + 2))};
  }
  static void get(const block& b, int s, float32x4_t w[4]) {
    u8_to_f32(legacy_nibbles(b.qs, s), w);
    scale_add(w, b.d, b.m);
  }
};

// q5_0: (float)(q - 16) * d, q = nibble | bit << 4.
struct dec_q5_0 {
  static constexpr int block_elems = 32, block_bytes = sizeof(block_q5_0);
  struct block { const uint8_t* qs; const uint8_t* qh; float d; };
  static block load(const uint8_t* p) {
    return {p + offsetof(block_q5_0, qs), p + offsetof(block_q5_0, qh), half_to_float(read_u16(p))};
  }
  static void get(const block& b, int s, float32x4_t w[4]) {
    const uint8x16_t q = vorrq_u8(legacy_nibbles(b.qs, s), q5_high_bits(b.qh, 16 * s));
    s8_to_f32(vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(16)), w);
    scale(w, b.d);
  }
};

// q5_1: t = (float)q * d; t + m.
struct dec_q5_1 {
  static constexpr int block_elems = 32, block_bytes = sizeof(block_q5_1);
  struct block { const uint8_t* qs; const uint8_t* qh; float d, m; };
  static block load(const uint8_t* p) {
    return {p + offsetof(block_q5_1, qs), p + offsetof(block_q5_1, qh), half_to_float(read_u16(p)),
            half_to_float(read_u16(p + 2))};
  }
  static void get(const block& b, int s, float32x4_t w[4]) {
    u8_to_f32(vorrq_u8(legacy_nibbles(b.qs, s), q5_high_bits(b.qh, 16 * s)), w);
    scale_add(w, b.d, b.m);
  }
};

// q4_k / q5_k: per sub-block s: d1 = d * (float)sc, m1 = dmin * (float)m; y = d1 * (float)q - m1.
// Step st (16 elements) lies in sub-block st / 2, half st % 2 of its 32 lanes.
template <bool Q5>
struct dec_k_type1 {
  static constexpr int block_elems = qk_k;
  static constexpr int block_bytes = Q5 ? sizeof(block_q5_k) : sizeof(block_q4_k);
  struct block { const uint8_t* qs; const uint8_t* qh; float d1[8], m1[8]; };
  static block load(const uint8_t* p) {
    block b;
    b.qs = p + (Q5 ? offsetof(block_q5_k, qs) : offsetof(block_q4_k, qs));
    b.qh = Q5 ? p + offsetof(block_q5_k, qh) : nullptr;
    const float d = half_to_float(read_u16(p)), dmin = half_to_float(read_u16(p + 2));
    const uint8_t* scales = p + 4;  // offsetof(scales) is 4 in both layouts
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      k4_scale_min(s, scales, &sc, &m);
      b.d1[s] = d * static_cast<float>(sc);
      b.m1[s] = dmin * static_cast<float>(m);
    }
    return b;
  }
  static void get(const block& b, int st, float32x4_t w[4]) {
    const int s = st / 2, l0 = 16 * (st % 2);
    const uint8x16_t raw = vld1q_u8(b.qs + 32 * (s / 2) + l0);
    uint8x16_t q = (s & 1) ? vshrq_n_u8(raw, 4) : vandq_u8(raw, vdupq_n_u8(0x0f));
    if (Q5) {  // bit s of qh[l] -> bit 4
      const uint8x16_t h = vshlq_u8(vld1q_u8(b.qh + l0), vdupq_n_s8(static_cast<int8_t>(4 - s)));
      q = vorrq_u8(q, vandq_u8(h, vdupq_n_u8(0x10)));
    }
    u8_to_f32(q, w);
    scale_sub(w, b.d1[s], b.m1[s]);
  }
};
using dec_q4_k = dec_k_type1<false>;
using dec_q5_k = dec_k_type1<true>;

// q6_k: ds = d * (float)scales[e / 16]; y = ds * (float)(q - 32). Step st covers elements 16st .. 16st+15,
// all in sub-block st: half h = st / 8, quarter g = (st % 8) / 2, lanes l0 = 16 * (st % 2) ..
struct dec_q6_k {
  static constexpr int block_elems = qk_k, block_bytes = sizeof(block_q6_k);
  struct block { const uint8_t* ql; const uint8_t* qh; const int8_t* scales; float d; };
  static block load(const uint8_t* p) {
    return {p + offsetof(block_q6_k, ql), p + offsetof(block_q6_k, qh),
            reinterpret_cast<const int8_t*>(p + offsetof(block_q6_k, scales)),
            half_to_float(read_u16(p + offsetof(block_q6_k, d)))};
  }
  static void get(const block& b, int st, float32x4_t w[4]) {
    const int h = st / 8, g = (st % 8) / 2, l0 = 16 * (st % 2);
    const uint8x16_t lo = vld1q_u8(b.ql + 64 * h + 32 * (g & 1) + l0);
    const uint8x16_t nib = g < 2 ? vandq_u8(lo, vdupq_n_u8(0x0f)) : vshrq_n_u8(lo, 4);
    const uint8x16_t hb = vshlq_u8(vld1q_u8(b.qh + 32 * h + l0), vdupq_n_s8(static_cast<int8_t>(4 - 2 * g)));
    const uint8x16_t q = vorrq_u8(nib, vandq_u8(hb, vdupq_n_u8(0x30)));
    s8_to_f32(vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32)), w);
    scale(w, b.d * static_cast<float>(b.scales[st]));
  }
};

}  // namespace lime::cpu::neon
