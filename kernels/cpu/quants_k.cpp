// Reference (de)quantization of GGML's 256-element K-quant super-blocks: q4_k, q5_k (type-1 with 6-bit
// packed scales and mins) and q6_k (type-0 with int8 scales). The dequantized values define these types.
#include <cstring>

#include "kernels/cpu/quants_detail.h"
#include "kernels/quant_blocks.h"

namespace lime::cpu::quants_detail {
namespace {

// ---- q4_k / q5_k ---------------------------------------------------------------------------------------

// Shared dequantizer; qh != nullptr (q5_k) adds the fifth bits. Formula per element, in this order, no fma:
//   d1 = d * (float)sc;  m1 = dmin * (float)m;  y = d1 * (float)q - m1
// (d * sc and d1 * q are exact in fp32, so y is the single rounding of the subtraction, and equals
// llama.cpp's dequantize_row_q4_K/q5_K bit for bit whatever its operand order or fma contraction.)
void dequantize_k_type1(uint16_t d_h, uint16_t dmin_h, const uint8_t* scales, const uint8_t* qs,
                        const uint8_t* qh, float* y) {
  const float d = fp16_to_fp32(d_h);
  const float dmin = fp16_to_fp32(dmin_h);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    k4_scale_min(s, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    const uint8_t* q4 = qs + 32 * (s / 2);  // sub-blocks 2c and 2c+1 share qs[32c ..] (low / high nibbles)
    const int shift = (s & 1) * 4;
    for (int l = 0; l < 32; ++l) {
      int q = (q4[l] >> shift) & 0x0f;
      if (qh) q |= ((qh[l] >> s) & 1) << 4;  // sub-block s takes bit s of qh[l]
      const float t = d1 * static_cast<float>(q);
      y[32 * s + l] = t - m1;
    }
  }
}

// Squared error of quantizing x[0..n) as s * L + b with L = round((x - b) / s) clamped to [0, nmax].
double type1_error(const float* x, int n, int nmax, float s, float b) {
  double err = 0.0;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp((x[i] - b) / s, 0, nmax);
    const double e = static_cast<double>(s) * l + b - x[i];
    err += e * e;
  }
  return err;
}

// Fits x[0..n) ~= scale * q - min with q in [0, nmax], scale >= 0, min >= 0 (GGML's K-quants can only
// subtract). Starts from the plain [min(x, 0), max(x)] range, then tries 21 slightly stretched/shrunk grids,
// refitting scale and offset to each grid's assignment by least squares; keeps the lowest squared error.
void fit_type1(const float* x, int n, int nmax, float* scale, float* min) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  if (lo > 0.f) lo = 0.f;
  if (!(hi > lo)) {  // constant block (or NaN): the offset alone represents it
    *scale = 0.f;
    *min = -lo;
    return;
  }
  float best_s = (hi - lo) / static_cast<float>(nmax), best_b = lo;
  double best_err = type1_error(x, n, nmax, best_s, best_b);
  int l[32];
  for (int k = -10; k <= 10; ++k) {
    const float iscale = (static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / (hi - lo);
    double sl = 0, sl2 = 0, sx = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      l[i] = round_clamp((x[i] - lo) * iscale, 0, nmax);
      sl += l[i];
      sl2 += static_cast<double>(l[i]) * l[i];
      sx += x[i];
      sxl += static_cast<double>(x[i]) * l[i];
    }
    const double det = n * sl2 - sl * sl;
    if (!(det > 0)) continue;
    double s = (n * sxl - sl * sx) / det;
    double b = (sl2 * sx - sl * sxl) / det;
    if (b > 0) {  // offsets can only be subtracted: refit the scale alone with b = 0
      b = 0;
      s = sxl / sl2;
    }
    if (!(s > 0)) continue;
    const double err = type1_error(x, n, nmax, static_cast<float>(s), static_cast<float>(b));
    if (err < best_err) {
      best_err = err;
      best_s = static_cast<float>(s);
      best_b = static_cast<float>(b);
    }
  }
  *scale = best_s;
  *min = -best_b;
}

// Quantizes super-block x with super-scales d, dmin (fp16-exact) and the sub-block fits: 6-bit sc = round(scale
// / d), m = round(min / dmin), then q = round((x + m1) / d1) in [0, nmax] against the stored d1 = d * sc and
// m1 = dmin * m (the dequantizer's values). Fills sc, m, q; returns the squared error.
double k_type1_apply(const float* x, int nmax, const float* sub_scale, const float* sub_min, float d, float dmin,
                     int* sc, int* m, int* q) {
  double err = 0.0;
  for (int s = 0; s < 8; ++s) {
    sc[s] = d > 0.f ? round_clamp(sub_scale[s] / d, 0, 63) : 0;
    m[s] = dmin > 0.f ? round_clamp(sub_min[s] / dmin, 0, 63) : 0;
    const float d1 = d * static_cast<float>(sc[s]);
    const float m1 = dmin * static_cast<float>(m[s]);
    for (int l = 0; l < 32; ++l) {
      const float xi = x[32 * s + l];
      const int v = d1 > 0.f ? round_clamp((xi + m1) / d1, 0, nmax) : 0;
      q[32 * s + l] = v;
      const double e = static_cast<double>(d1 * static_cast<float>(v) - m1) - xi;
      err += e * e;
    }
  }
  return err;
}

// Quantizes one super-block: per sub-block fits, then the super-scales d = max scale / k and dmin = max min / k'
// in fp16. k = k' = 63 is the plain choice; as fp16 subnormals (small weights) they can round several percent
// off, so k in 63 .. 48 is tried for d (dmin plain), then k' for dmin (with that d), keeping the lowest error
// (first on ties). Writes 256 quants to q and fills d, dmin, scales.
void quantize_k_type1(const float* x, int nmax, int* q, uint16_t* d_h, uint16_t* dmin_h, uint8_t* scales) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0.f, max_min = 0.f;
  for (int s = 0; s < 8; ++s) {
    fit_type1(x + 32 * s, 32, nmax, &sub_scale[s], &sub_min[s]);
    if (sub_scale[s] > max_scale) max_scale = sub_scale[s];
    if (sub_min[s] > max_min) max_min = sub_min[s];
  }
  int sc[8], m[8];
  float d = fp16_round(max_scale / 63.f);
  float dmin = fp16_round(max_min / 63.f);
  double best = k_type1_apply(x, nmax, sub_scale, sub_min, d, dmin, sc, m, q);
  for (int pass = 0; pass < 2; ++pass) {
    const float top = pass == 0 ? max_scale : max_min;
    for (int k = 62; k >= 48 && top > 0.f; --k) {
      const float c = fp16_round(top / static_cast<float>(k));
      const double err = pass == 0 ? k_type1_apply(x, nmax, sub_scale, sub_min, c, dmin, sc, m, q)
                                   : k_type1_apply(x, nmax, sub_scale, sub_min, d, c, sc, m, q);
      if (err < best) {
        best = err;
        (pass == 0 ? d : dmin) = c;
      }
    }
  }
  k_type1_apply(x, nmax, sub_scale, sub_min, d, dmin, sc, m, q);
  *d_h = fp32_to_fp16(d);
  *dmin_h = fp32_to_fp16(dmin);
  // Packing: the inverse of k4_scale_min (quant_blocks.h).
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

// Low nibbles into qs (element 64c + l -> low nibble of qs[32c + l], 64c + 32 + l -> its high nibble) and,
// for q5_k, bit 4 of element 32s + l into bit s of qh[l].
void pack_k_type1(const int* q, uint8_t* qs, uint8_t* qh) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      qs[32 * c + l] = static_cast<uint8_t>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
    }
  }
  if (qh) {
    std::memset(qh, 0, 32);
    for (int s = 0; s < 8; ++s) {
      for (int l = 0; l < 32; ++l) qh[l] = static_cast<uint8_t>(qh[l] | (((q[32 * s + l] >> 4) & 1) << s));
    }
  }
}

// ---- q6_k ----------------------------------------------------------------------------------------------

// Squared error of quantizing x[0..16) as s * L with L = round(x / s) clamped to [-32, 31].
double type0_error(const float* x, float s) {
  double err = 0.0;
  for (int i = 0; i < 16; ++i) {
    const double e = static_cast<double>(s) * round_clamp(x[i] / s, -32, 31) - x[i];
    err += e * e;
  }
  return err;
}

// Sub-block scale s >= 0 for x[0..16): s = absmax / t for the t in 32, 31, ..., 1 with the lowest squared
// error (first one on ties). Trying whole t from the top makes requantization exact: for values s * q it
// finds t = max|q| and s again, unless the q share a common factor (e.g. a lone outlier among zeros), when a
// finer grid tried earlier fits exactly too.
float fit_q6(const float* x) {
  float amax = 0.f;
  for (int i = 0; i < 16; ++i) amax = std::fabs(x[i]) > amax ? std::fabs(x[i]) : amax;
  if (!(amax > 0.f)) return 0.f;
  float best_s = 0.f;
  double best_err = 0.0;
  for (int t = 32; t >= 1; --t) {
    const float s = amax / static_cast<float>(t);
    const double err = type0_error(x, s);
    if (best_s == 0.f || err < best_err) {
      best_s = s;
      best_err = err;
    }
  }
  return best_s;
}

// Quantizes super-block x against super-scale d (already fp16-exact) and sub-block scales sub[16]: sc = round(sub
// / d) in [0, 127], q = round(x / (d * sc)) in [-32, 31] (stored + 32); a sub-block whose quants all round to 0
// gets sc = 0, so the stored form is canonical. Returns the squared error.
double q6_apply(const float* x, const float* sub, float d, int* sc, int* q) {
  double err = 0.0;
  for (int s = 0; s < 16; ++s) {
    sc[s] = d > 0.f ? round_clamp(sub[s] / d, 0, 127) : 0;
    const float ds = d * static_cast<float>(sc[s]);
    bool any = false;
    for (int l = 0; l < 16; ++l) {
      const float xi = x[16 * s + l];
      const int v = ds > 0.f ? round_clamp(xi / ds, -32, 31) : 0;
      q[16 * s + l] = v + 32;
      any = any || v != 0;
      const double e = static_cast<double>(ds) * v - xi;
      err += e * e;
    }
    if (!any) sc[s] = 0;
  }
  return err;
}

}  // namespace

// q4_k: see dequantize_k_type1 for the formula and its order.
void dequantize_q4_k(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q4_k>(src, i);
    dequantize_k_type1(b.d, b.dmin, b.scales, b.qs, nullptr, dst + i * qk_k);
  }
}

// q5_k: as q4_k with q = low nibble | qh bit << 4.
void dequantize_q5_k(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q5_k>(src, i);
    dequantize_k_type1(b.d, b.dmin, b.scales, b.qs, b.qh, dst + i * qk_k);
  }
}

// q6_k: y = (d * (float)sc) * (float)(q - 32), sc = scales[e / 16], in this order, no fma. Both products are
// exact in fp32 (11 + 8 + 6 significant bits at most), so any order gives the same value.
void dequantize_q6_k(const void* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_q6_k>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * qk_k;
    for (int e = 0; e < qk_k; ++e) {
      const int h = e / 128, g = (e % 128) / 32, l = e % 32;  // half, quarter of the half, lane
      const uint8_t lo = b.ql[64 * h + 32 * (g & 1) + l];
      const int q = ((g < 2 ? lo : lo >> 4) & 15) | (((b.qh[32 * h + l] >> (2 * g)) & 3) << 4);
      const float ds = d * static_cast<float>(b.scales[e / 16]);
      y[e] = ds * static_cast<float>(q - 32);
    }
  }
}

void quantize_q4_k(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    int q[qk_k];
    block_q4_k b;
    quantize_k_type1(src + i * qk_k, 15, q, &b.d, &b.dmin, b.scales);
    pack_k_type1(q, b.qs, nullptr);
    store_block(dst, i, b);
  }
}

void quantize_q5_k(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    int q[qk_k];
    block_q5_k b;
    quantize_k_type1(src + i * qk_k, 31, q, &b.d, &b.dmin, b.scales);
    pack_k_type1(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

// q6_k: non-negative sub-block scales (fit_q6); super-scale d = max scale / k in fp16 for the k in 127 .. 96 with
// the lowest error over the whole super-block (first on ties; k = 127 is the plain choice, the others matter when d
// is an fp16 subnormal, i.e. for small weights, whose rounding can be several percent). Together with fit_q6's
// whole-divisor search this makes quantize(dequantize(quantize(x))) == quantize(x).
void quantize_q6_k(const float* src, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* x = src + i * qk_k;
    float sub[16], max_s = 0.f;
    for (int s = 0; s < 16; ++s) {
      sub[s] = fit_q6(x + 16 * s);
      if (sub[s] > max_s) max_s = sub[s];
    }
    // Candidates whose largest sc would fall below 96 are skipped, so requantization finds the same d again.
    float d = fp16_round(max_s / 127.f);
    bool have = false;
    double best_err = 0.0;
    int sc[16], q[qk_k];
    for (int k = 127; k >= 96 && max_s > 0.f; --k) {
      const float c = fp16_round(max_s / static_cast<float>(k));
      if (!(c > 0.f) || round_clamp(max_s / c, 0, 127) < 96) continue;
      const double err = q6_apply(x, sub, c, sc, q);
      if (!have || err < best_err) {
        have = true;
        d = c;
        best_err = err;
      }
    }
    q6_apply(x, sub, d, sc, q);
    block_q6_k b;
    b.d = fp32_to_fp16(d);
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(sc[s]);
    // Layout: element 128h + 32g + l -> nibble (g >= 2: high) of ql[64h + 32(g & 1) + l], bits 2g..2g+1 of qh[32h + l].
    std::memset(b.ql, 0, sizeof b.ql);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int e = 0; e < qk_k; ++e) {
      const int h = e / 128, g = (e % 128) / 32, l = e % 32;
      uint8_t& lo = b.ql[64 * h + 32 * (g & 1) + l];
      lo = static_cast<uint8_t>(lo | ((q[e] & 15) << (g < 2 ? 0 : 4)));
      b.qh[32 * h + l] = static_cast<uint8_t>(b.qh[32 * h + l] | ((q[e] >> 4) << (2 * g)));
    }
    store_block(dst, i, b);
  }
}

}  // namespace lime::cpu::quants_detail
