// Fast K-quant encoders for generated weights (q4_k, q5_k, q6_k): one pass of plain min/max scales per sub-block,
// no search, so a 1B-parameter file quantizes in seconds. The reference quantize_row (kernels/cpu/quants.h) stays
// the accurate one; these only need valid blocks whose values are close to the generated ones.
#include <cmath>
#include <cstring>

#include "kernels/cpu/quants.h"
#include "kernels/quant_blocks.h"
#include "runtime/model_gen.h"

namespace lime {
namespace {

using cpu::fp16_to_fp32;
using cpu::fp32_to_fp16;

// The smallest fp16 value h with h * n >= v (v >= 0, finite): a super-scale whose 6/7-bit multiples reach v.
uint16_t fp16_covering(float v, float n) {
  uint16_t h = fp32_to_fp16(v / n);
  while (fp16_to_fp32(h) * n < v && h < 0x7bff) ++h;  // positive fp16 patterns increase with the value
  return h;
}

// Round half away from zero, then clamp (plain arithmetic: nearbyint and fmin/fmax are library calls in a
// baseline x86-64 build, and this loop runs once per weight). |v| must be < 2^31.
int clamp_round(float v, int lo, int hi) {
  const int r = static_cast<int>(v + (v < 0.f ? -0.5f : 0.5f));
  return r < lo ? lo : r > hi ? hi : r;
}

float min_f(float a, float b) { return b < a ? b : a; }
float max_f(float a, float b) { return b > a ? b : a; }

// 6-bit scales and mins of the 8 sub-blocks, packed as k4_scale_min (kernels/quant_blocks.h) reads them.
void pack_scales(const int* sc, const int* m, uint8_t* scales) {
  std::memset(scales, 0, k_scale_size);
  for (int s = 0; s < 4; ++s) {
    scales[s] = static_cast<uint8_t>(sc[s]);
    scales[s + 4] = static_cast<uint8_t>(m[s]);
  }
  for (int s = 4; s < 8; ++s) {
    scales[s + 4] = static_cast<uint8_t>((sc[s] & 15) | ((m[s] & 15) << 4));
    scales[s - 4] = static_cast<uint8_t>(scales[s - 4] | ((sc[s] >> 4) << 6));
    scales[s] = static_cast<uint8_t>(scales[s] | ((m[s] >> 4) << 6));
  }
}

// q4_k / q5_k super-block: x ~= (d * sc[s]) * q - dmin * m[s], q in [0, nmax]. Sub-block scales are rounded up
// so the grid spans each sub-block's range. Fills q[256], d, dmin, packed scales.
void encode_k_type1(const float* x, int nmax, int* q, uint16_t* d_h, uint16_t* dmin_h, uint8_t* scales) {
  float scale[8], minv[8], max_scale = 0.f, max_min = 0.f;
  for (int s = 0; s < 8; ++s) {
    float lo = x[32 * s], hi = x[32 * s];
    for (int l = 1; l < 32; ++l) {
      lo = min_f(lo, x[32 * s + l]);
      hi = max_f(hi, x[32 * s + l]);
    }
    lo = min_f(lo, 0.f);
    scale[s] = (hi - lo) / static_cast<float>(nmax);
    minv[s] = -lo;
    max_scale = max_f(max_scale, scale[s]);
    max_min = max_f(max_min, minv[s]);
  }
  *d_h = fp16_covering(max_scale, 63.f);
  *dmin_h = fp16_covering(max_min, 63.f);
  const float d = fp16_to_fp32(*d_h), dmin = fp16_to_fp32(*dmin_h);
  int sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = d > 0.f ? static_cast<int>(min_f(63.f, std::ceil(scale[s] / d))) : 0;
    m[s] = dmin > 0.f ? clamp_round(minv[s] / dmin, 0, 63) : 0;
    const float d1 = d * static_cast<float>(sc[s]), m1 = dmin * static_cast<float>(m[s]);
    const float inv = d1 > 0.f ? 1.f / d1 : 0.f;
    for (int l = 0; l < 32; ++l) q[32 * s + l] = clamp_round((x[32 * s + l] + m1) * inv, 0, nmax);
  }
  pack_scales(sc, m, scales);
}

void encode_q4_k(const float* x, block_q4_k* b) {
  int q[qk_k];
  encode_k_type1(x, 15, q, &b->d, &b->dmin, b->scales);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b->qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}

void encode_q5_k(const float* x, block_q5_k* b) {
  int q[qk_k];
  encode_k_type1(x, 31, q, &b->d, &b->dmin, b->scales);
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      b->qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      b->qh[l] = static_cast<uint8_t>(b->qh[l] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
    }
  }
}

// q6_k: x = (d * scales[s]) * (q - 32). Each sub-block's largest-magnitude value maps to -32 (the sign goes into
// the signed 8-bit scale), the scale magnitude rounded up so nothing else overshoots by more than one step.
void encode_q6_k(const float* x, block_q6_k* b) {
  float sub[16], amax = 0.f;
  for (int s = 0; s < 16; ++s) {
    float v = 0.f;
    for (int l = 0; l < 16; ++l)
      if (std::fabs(x[16 * s + l]) > std::fabs(v)) v = x[16 * s + l];
    sub[s] = -v / 32.f;
    amax = max_f(amax, std::fabs(sub[s]));
  }
  b->d = fp16_covering(amax, 127.f);
  const float d = fp16_to_fp32(b->d);
  int q[qk_k];
  for (int s = 0; s < 16; ++s) {
    const float mag = d > 0.f ? min_f(127.f, std::ceil(std::fabs(sub[s]) / d)) : 0.f;
    const int sc = static_cast<int>(sub[s] < 0.f ? -mag : mag);
    b->scales[s] = static_cast<int8_t>(sc);
    const float ds = d * static_cast<float>(sc);
    const float inv = ds != 0.f ? 1.f / ds : 0.f;
    for (int l = 0; l < 16; ++l) q[16 * s + l] = clamp_round(x[16 * s + l] * inv, -32, 31) + 32;
  }
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int e = 128 * h + l;
      const int q1 = q[e], q2 = q[e + 32], q3 = q[e + 64], q4 = q[e + 96];
      b->ql[64 * h + l] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
      b->ql[64 * h + l + 32] = static_cast<uint8_t>((q2 & 15) | ((q4 & 15) << 4));
      b->qh[32 * h + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

}  // namespace

bool model_gen_quantize_fast(tensor_type t, const float* src, void* dst, int64_t n) {
  if (n % qk_k != 0) return false;
  const int64_t nb = n / qk_k;
  // Blocks are built in an aligned local and copied out: a row may start at any byte offset.
  switch (t) {
    case tensor_type::q4_k:
      for (int64_t i = 0; i < nb; ++i) {
        block_q4_k b;
        encode_q4_k(src + i * qk_k, &b);
        std::memcpy(static_cast<uint8_t*>(dst) + i * sizeof b, &b, sizeof b);
      }
      return true;
    case tensor_type::q5_k:
      for (int64_t i = 0; i < nb; ++i) {
        block_q5_k b;
        encode_q5_k(src + i * qk_k, &b);
        std::memcpy(static_cast<uint8_t*>(dst) + i * sizeof b, &b, sizeof b);
      }
      return true;
    case tensor_type::q6_k:
      for (int64_t i = 0; i < nb; ++i) {
        block_q6_k b;
        encode_q6_k(src + i * qk_k, &b);
        std::memcpy(static_cast<uint8_t*>(dst) + i * sizeof b, &b, sizeof b);
      }
      return true;
    default:
      return false;
  }
}

}  // namespace lime
