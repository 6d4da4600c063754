// Device decoders of every computable weight type, laid out for the canonical 16-lane order: a row is cut into
// units (16 elements for f32/f16/bf16, one 32-element block for the legacy quants, one 256-element super-block for
// the K-quants) and lane l of a half-warp gets elements l, l + 16, l + 32, ... of a unit, in order. Each value is
// the reference dequantizer's (kernels/cpu/quants_*.cpp), with its operations in its order; integer-to-float
// conversions go through small_uint_to_float / small_uint_minus (exact, off the slow conversion unit).
#pragma once
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/quant_blocks.h"
#include "kernels/tensor_type.h"

namespace lime::cuda {

__device__ inline float ld_half(const uint8_t* p) { return fp16_to_fp32(*reinterpret_cast<const uint16_t*>(p)); }

// Interface of every decoder Q:
//   Q::unit        elements per unit; Q::per_lane = unit / 16 values per lane; Q::unit_bytes bytes per unit
//   Q::load(row, u, lane, k, w): w[i] = element u * unit + 16 * i + lane of the row (0 past k: plain types only)
// Rows are 2-byte aligned (4 for f32): the host launchers check it.

template <tensor_type T>
struct plain_decoder {
  static constexpr int unit = 16;
  static constexpr int per_lane = 1;
  static constexpr int unit_bytes = T == tensor_type::f32 ? 64 : 32;
  __device__ static void load(const uint8_t* row, int64_t u, int lane, int64_t k, float* w) {
    const int64_t e = u * 16 + lane;
    if (e >= k) {
      w[0] = 0.f;
      return;
    }
    if constexpr (T == tensor_type::f32) {
      w[0] = reinterpret_cast<const float*>(row)[e];
    } else if constexpr (T == tensor_type::f16) {
      w[0] = fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[e]);
    } else {
      w[0] = bf16_to_fp32(reinterpret_cast<const uint16_t*>(row)[e]);
    }
  }
};

// Legacy 32-element blocks: lane l takes element l (low nibble of qs[l]) and element l + 16 (its high nibble).
// Type-0: y = (float)(q - off) * d. Type-1: y = ((float)q * d) + m. Fifth bit of element j: bit j of qh (LE u32).
template <tensor_type T>
struct legacy_decoder {
  static constexpr int unit = 32;
  static constexpr int per_lane = 2;
  static constexpr bool has_m = T == tensor_type::q4_1 || T == tensor_type::q5_1;
  static constexpr bool has_qh = T == tensor_type::q5_0 || T == tensor_type::q5_1;
  static constexpr int bytes = T == tensor_type::q4_0 ? 18 : T == tensor_type::q4_1 ? 20 : T == tensor_type::q5_0 ? 22 : 24;
  static constexpr int unit_bytes = bytes;
  __device__ static void load(const uint8_t* row, int64_t u, int lane, int64_t /*k*/, float* w) {
    const uint8_t* b = row + u * bytes;
    const float d = ld_half(b);
    const float m = has_m ? ld_half(b + 2) : 0.f;
    const uint8_t* qh = b + (has_m ? 4 : 2);
    const uint8_t* qs = qh + (has_qh ? 4 : 0);
    const int byte = qs[lane];
    int q0 = byte & 0x0f, q1 = byte >> 4;
    if constexpr (has_qh) {
      q0 |= ((qh[lane >> 3] >> (lane & 7)) & 1) << 4;                   // element lane
      q1 |= ((qh[2 + (lane >> 3)] >> (lane & 7)) & 1) << 4;             // element lane + 16
    }
    if constexpr (has_m) {
      const float t0 = small_uint_to_float(q0) * d;
      const float t1 = small_uint_to_float(q1) * d;
      w[0] = t0 + m;
      w[1] = t1 + m;
    } else {
      const int off = has_qh ? 16 : 8;
      w[0] = small_uint_minus(q0, off) * d;
      w[1] = small_uint_minus(q1, off) * d;
    }
  }
};

struct q8_0_decoder {
  static constexpr int unit = 32;
  static constexpr int per_lane = 2;
  static constexpr int unit_bytes = 34;
  __device__ static void load(const uint8_t* row, int64_t u, int lane, int64_t /*k*/, float* w) {
    const uint8_t* b = row + u * 34;
    const float d = ld_half(b);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
    w[0] = small_uint_minus(qs[lane] + 128, 128) * d;
    w[1] = small_uint_minus(qs[lane + 16] + 128, 128) * d;
  }
};

// q4_k / q5_k super-blocks: element e = 16 i + lane lies in sub-block s = i / 2 at l = 16 (i % 2) + lane; its low
// nibble is in qs[32 (s / 2) + l] (high nibble for odd s), its fifth bit (q5_k) is bit s of qh[l].
// y = d1 * (float)q - m1 with d1 = d * (float)sc, m1 = dmin * (float)m (dequantize_k_type1's order).
template <bool Q5>
struct k_type1_decoder {
  static constexpr int unit = 256;
  static constexpr int per_lane = 16;
  static constexpr int bytes = Q5 ? 176 : 144;
  static constexpr int unit_bytes = bytes;
  __device__ static void load(const uint8_t* row, int64_t u, int lane, int64_t /*k*/, float* w) {
    const uint8_t* b = row + u * bytes;
    const float d = ld_half(b);
    const float dmin = ld_half(b + 2);
    uint8_t scales[k_scale_size];
#pragma unroll
    for (int i = 0; i < k_scale_size; ++i) scales[i] = b[4 + i];
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (Q5 ? 48 : 16);
    const int qh0 = Q5 ? qh[lane] : 0, qh1 = Q5 ? qh[lane + 16] : 0;
#pragma unroll
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      k4_scale_min(s, scales, &sc, &m);
      sub_block(qs, qh0, qh1, s, lane, d * small_uint_to_float(sc), dmin * small_uint_to_float(m), w);
    }
  }
  // The lane's two elements of sub-block s (w[2s], w[2s + 1]) from its scale d1 = d * sc and min m1 = dmin * m.
  __device__ static void sub_block(const uint8_t* qs, int qh0, int qh1, int s, int lane, float d1, float m1, float* w) {
    const int shift = (s & 1) * 4;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int l = 16 * half + lane;
      int q = (qs[32 * (s / 2) + l] >> shift) & 0x0f;
      if (Q5) q |= (((half ? qh1 : qh0) >> s) & 1) << 4;
      const float t = d1 * small_uint_to_float(q);
      w[2 * s + half] = t - m1;
    }
  }
};

// q6_k: element e = 16 i + lane: half h = i / 8, quarter g = (i % 8) / 2, l = 16 (i % 2) + lane;
// q = nibble (g >= 2: high) of ql[64h + 32(g & 1) + l] | bits 2g..2g+1 of qh[32h + l] << 4; sub-block scale
// scales[e / 16] = scales[i]. y = (d * (float)sc) * (float)(q - 32).
struct q6_k_decoder {
  static constexpr int unit = 256;
  static constexpr int per_lane = 16;
  static constexpr int unit_bytes = 210;
  __device__ static void load(const uint8_t* row, int64_t u, int lane, int64_t /*k*/, float* w) {
    const uint8_t* b = row + u * unit_bytes;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = ld_half(b + 208);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const float ds = d * small_uint_minus(scales[i] + 128, 128);
      w[i] = ds * small_uint_minus(quant(b, i, lane), 32);
    }
  }
  // The 6-bit q of the lane's element i of the super-block at b (before the - 32).
  __device__ static int quant(const uint8_t* b, int i, int lane) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int h = i / 8, g = (i % 8) / 2, l = 16 * (i % 2) + lane;
    const int lo = ql[64 * h + 32 * (g & 1) + l];
    return ((g < 2 ? lo : lo >> 4) & 15) | (((qh[32 * h + l] >> (2 * g)) & 3) << 4);
  }
};

// Calls f(Q{}) with the decoder of type t; returns false for a type without one.
template <class F>
bool visit_decoder(tensor_type t, F&& f) {
  switch (t) {
    case tensor_type::f32: f(plain_decoder<tensor_type::f32>{}); return true;
    case tensor_type::f16: f(plain_decoder<tensor_type::f16>{}); return true;
    case tensor_type::bf16: f(plain_decoder<tensor_type::bf16>{}); return true;
    case tensor_type::q4_0: f(legacy_decoder<tensor_type::q4_0>{}); return true;
    case tensor_type::q4_1: f(legacy_decoder<tensor_type::q4_1>{}); return true;
    case tensor_type::q5_0: f(legacy_decoder<tensor_type::q5_0>{}); return true;
    case tensor_type::q5_1: f(legacy_decoder<tensor_type::q5_1>{}); return true;
    case tensor_type::q8_0: f(q8_0_decoder{}); return true;
    case tensor_type::q4_k: f(k_type1_decoder<false>{}); return true;
    case tensor_type::q5_k: f(k_type1_decoder<true>{}); return true;
    case tensor_type::q6_k: f(q6_k_decoder{}); return true;
    default: return false;
  }
}

// Host checks shared by the launchers that read weight rows: a type with a decoder, k whole blocks, and the
// alignment the decoders assume (4 bytes for f32, 2 for the rest; every block size is even).
inline kstatus check_weights(tensor_type t, const void* w, int64_t k) {
  const tensor_type_info& info = tensor_type_traits(t);
  if (!info.computable) return kstatus::unsupported_type;
  if (k < 0 || k % info.block_elems != 0) return kstatus::bad_shape;
  const uintptr_t align = t == tensor_type::f32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(w) % align != 0) return kstatus::bad_argument;
  return kstatus::ok;
}

}  // namespace lime::cuda
