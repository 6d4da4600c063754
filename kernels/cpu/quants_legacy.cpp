// Reference (de)quantization of GGML's 32-element "legacy" blocks: q4_0, q4_1, q5_0, q5_1, q8_0.
// The dequantized values here define these types for every other kernel (see each formula's comment).
#include <cstring>

#include "kernels/cpu/quants_detail.h"
#include "kernels/quant_blocks.h"

namespace lime::cpu::quants_detail {
namespace {

// Low 4 bits of element j (0..31) from the nibble-packed qs[16] (j < 16: low nibble of qs[j], else high of qs[j-16]).
int nibble(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4); }

// Bit 4 of element j from qh[4] read as a little-endian uint32.
int high_bit(const uint8_t* qh, int j) { return (qh[j >> 3] >> (j & 7)) & 1; }

// Packs 32 quants (each < 2^bits, bits 4 or 5) into qs[16] and, for 5 bits, qh[4].
void pack_quants(const int* q, uint8_t* qs, uint8_t* qh) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
  if (qh) {
    std::memset(qh, 0, 4);
    for (int j = 0; j < 32; ++j) qh[j >> 3] = static_cast<uint8_t>(qh[j >> 3] | (((q[j] >> 4) & 1) << (j & 7)));
  }
}

// The element with the largest magnitude, sign kept (the first one on ties); 0 for an all-zero block.
float signed_absmax(const float* x, int n) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Type-0 with an asymmetric range [-half, half-1] (q4_0: half 8, q5_0: 16), as GGML's reference: the
// largest-magnitude element maps to -half exactly, so d = max / -half. Quants are computed against the
// stored (fp16-rounded) d, which makes quantize(dequantize(quantize(x))) == quantize(x).
float quantize_type0(const float* x, int half, int* q) {
  const float d = fp16_round(signed_absmax(x, 32) / static_cast<float>(-half));
  const float id = d != 0.f ? 1.0f / d : 0.f;
  for (int j = 0; j < 32; ++j) q[j] = round_clamp(x[j] * id, -half, half - 1) + half;
  return d;
}

// Type-1 from the block's min and max: m = min, d = (max - min) / nmax (both as stored in fp16, quants against
// the stored values). Requantizing the output gives the same bytes unless the offset dwarfs the range: from
// |min| > 2^10 / nmax * (max - min) (q4_1: ~70x, q5_1: ~35x) the fp16 rounding of min can exceed half a step.
void quantize_type1(const float* x, int nmax, int* q, float* d_out, float* m_out) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < 32; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  const float m = fp16_round(lo);
  const float d = fp16_round((hi - lo) / static_cast<float>(nmax));
  const float id = d != 0.f ? 1.0f / d : 0.f;
  for (int j = 0; j < 32; ++j) q[j] = round_clamp((x[j] - m) * id, 0, nmax);
  *d_out = d;
  *m_out = m;
}

// q8_0's d: absmax / 127 in fp16, as GGML's reference. When that d is an fp16 subnormal (absmax below about
// 127 * 2^-14 = 0.0078) its rounding can be several percent off, so then the fp16 values of absmax / k for
// k = 127 .. 112 are tried and the one with the smallest squared error kept, among those that clamp no element
// by more than half a step (first on ties). That keeps |error| <= d / 2 and makes requantization exact.
double q8_0_error(const float* x, float d) {
  double err = 0.0;
  for (int j = 0; j < 32; ++j) {
    const double e = static_cast<double>(d) * round_clamp(x[j] / d, -127, 127) - x[j];
    err += e * e;
  }
  return err;
}

float q8_0_scale(const float* x) {
  float amax = 0.f;
  for (int j = 0; j < 32; ++j) amax = std::fabs(x[j]) > amax ? std::fabs(x[j]) : amax;
  const float d = fp16_round(amax / 127.f);
  if (d >= 0x1p-14f || !(amax > 0.f)) return d;  // a normal fp16 (or zero / NaN block)
  float best = 0.f;
  double best_err = 0.0;
  for (int k = 127; k >= 112; --k) {
    const float c = fp16_round(amax / static_cast<float>(k));
    if (c == 0.f || amax / c > 127.5f) continue;
    const double err = q8_0_error(x, c);
    if (best == 0.f || err < best_err) {
      best = c;
      best_err = err;
    }
  }
  return best;
}

}  // namespace

// Exactness note for all five types: q * d (a <= 8-bit integer times an fp16) is exact in fp32, so type-0
// values are exact products and type-1 values round once, in the final addition (an fma gives the same).
// Hence these equal llama.cpp's dequantize_row_* values bit for bit, whatever its operand order or its
// compiler's fma contraction.

// q4_0: y = (float)(q - 8) * d, d = fp16_to_fp32(block.d).
void dequantize_q4_0(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q4_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * qk_legacy;
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(nibble(b.qs, j) - 8) * d;
  }
}

// q4_1: y = ((float)q * d) + m, the product first, then the sum (one rounding: the product is exact).
void dequantize_q4_1(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q4_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    float* y = dst + i * qk_legacy;
    for (int j = 0; j < 32; ++j) {
      const float t = static_cast<float>(nibble(b.qs, j)) * d;
      y[j] = t + m;
    }
  }
}

// q5_0: y = (float)(q - 16) * d, q = low nibble | qh bit << 4.
void dequantize_q5_0(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q5_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * qk_legacy;
    for (int j = 0; j < 32; ++j) {
      const int q = nibble(b.qs, j) | (high_bit(b.qh, j) << 4);
      y[j] = static_cast<float>(q - 16) * d;
    }
  }
}

// q5_1: y = ((float)q * d) + m, product then sum.
void dequantize_q5_1(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q5_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    float* y = dst + i * qk_legacy;
    for (int j = 0; j < 32; ++j) {
      const int q = nibble(b.qs, j) | (high_bit(b.qh, j) << 4);
      const float t = static_cast<float>(q) * d;
      y[j] = t + m;
    }
  }
}

// q8_0: y = (float)q * d.
void dequantize_q8_0(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q8_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * qk_legacy;
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void quantize_q4_0(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    int q[32];
    block_q4_0 b;
    b.d = fp32_to_fp16(quantize_type0(src + i * qk_legacy, 8, q));
    pack_quants(q, b.qs, nullptr);
    store_block(dst, i, b);
  }
}

void quantize_q5_0(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    int q[32];
    block_q5_0 b;
    b.d = fp32_to_fp16(quantize_type0(src + i * qk_legacy, 16, q));
    pack_quants(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

void quantize_q4_1(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    int q[32];
    float d, m;
    quantize_type1(src + i * qk_legacy, 15, q, &d, &m);
    block_q4_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(m);
    pack_quants(q, b.qs, nullptr);
    store_block(dst, i, b);
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    int q[32];
    float d, m;
    quantize_type1(src + i * qk_legacy, 31, q, &d, &m);
    block_q5_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(m);
    pack_quants(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

void quantize_q8_0(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * qk_legacy;
    const float d = q8_0_scale(x);
    block_q8_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(d != 0.f ? round_clamp(x[j] / d, -127, 127) : 0);
    store_block(dst, i, b);
  }
}

}  // namespace lime::cpu::quants_detail
