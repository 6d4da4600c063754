// Independent reference decoders for the quantization tests, written from the GGML block layout
// descriptions (never calling kernels/cpu/quants.h), byte-building helpers, and the error metric of the
// round-trip tests (error relative to a plain uniform quantizer's).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <vector>

#include "kernels/tensor_type.h"

namespace lime::test {

// fp16 bit pattern -> exact value, via ldexp (independent of the bit tricks in fp16.cpp).
inline double ref_half(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 31) {
    v = m == 0 ? INFINITY : NAN;
  } else if (e == 0) {
    v = std::ldexp(static_cast<double>(m), -24);
  } else {
    v = std::ldexp(static_cast<double>(1024 + m), e - 25);
  }
  return s ? -v : v;
}

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x & 0xff));
  v.push_back(static_cast<uint8_t>(x >> 8));
}

// Each decoder reads one block at p and appends its elements (computed in double, where every product and
// sum below is exact, then rounded once to float) to out.
inline void ref_q4_0(const uint8_t* p, std::vector<float>& out) {
  const double d = ref_half(rd16(p));
  const uint8_t* qs = p + 2;
  for (int j = 0; j < 16; ++j) out.push_back(static_cast<float>(((qs[j] & 15) - 8) * d));
  for (int j = 0; j < 16; ++j) out.push_back(static_cast<float>(((qs[j] >> 4) - 8) * d));
}

inline void ref_q4_1(const uint8_t* p, std::vector<float>& out) {
  const double d = ref_half(rd16(p)), m = ref_half(rd16(p + 2));
  const uint8_t* qs = p + 4;
  for (int j = 0; j < 16; ++j) out.push_back(static_cast<float>((qs[j] & 15) * d + m));
  for (int j = 0; j < 16; ++j) out.push_back(static_cast<float>((qs[j] >> 4) * d + m));
}

inline uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

inline void ref_q5_0(const uint8_t* p, std::vector<float>& out) {
  const double d = ref_half(rd16(p));
  const uint32_t qh = rd32(p + 2);
  const uint8_t* qs = p + 6;
  for (int j = 0; j < 32; ++j) {
    const int lo = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
    const int q = lo + 16 * static_cast<int>((qh >> j) & 1);
    out.push_back(static_cast<float>((q - 16) * d));
  }
}

inline void ref_q5_1(const uint8_t* p, std::vector<float>& out) {
  const double d = ref_half(rd16(p)), m = ref_half(rd16(p + 2));
  const uint32_t qh = rd32(p + 4);
  const uint8_t* qs = p + 8;
  for (int j = 0; j < 32; ++j) {
    const int lo = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
    const int q = lo + 16 * static_cast<int>((qh >> j) & 1);
    out.push_back(static_cast<float>(q * d + m));
  }
}

inline void ref_q8_0(const uint8_t* p, std::vector<float>& out) {
  const double d = ref_half(rd16(p));
  for (int j = 0; j < 32; ++j) out.push_back(static_cast<float>(static_cast<int8_t>(p[2 + j]) * d));
}

// q4_k/q5_k scales: 12 bytes. Bytes 0..3: sc[0..3] in bits 0-5, bits 4-5 of sc[4..7] in bits 6-7.
// Bytes 4..7: m[0..3] in bits 0-5, bits 4-5 of m[4..7] in bits 6-7. Bytes 8..11: low nibble sc[4..7] & 15,
// high nibble m[4..7] & 15.
inline void ref_k4_unpack(const uint8_t* b, int* sc, int* m) {
  for (int s = 0; s < 4; ++s) {
    sc[s] = b[s] % 64;
    m[s] = b[4 + s] % 64;
    sc[4 + s] = (b[8 + s] % 16) + 16 * (b[s] / 64);
    m[4 + s] = (b[8 + s] / 16) + 16 * (b[4 + s] / 64);
  }
}

// q4_k (qh == nullptr) and q5_k: 4 chunks of 64; chunk c = qs[32c..32c+31]: low nibbles are elements
// 64c..64c+31 (sub-block 2c), high nibbles 64c+32..64c+63 (sub-block 2c+1); q5_k bit for sub-block s is bit s of qh[l].
inline void ref_k_type1(double d, double dmin, const uint8_t* scales, const uint8_t* qs, const uint8_t* qh,
                        std::vector<float>& out) {
  int sc[8], m[8];
  ref_k4_unpack(scales, sc, m);
  for (int c = 0; c < 4; ++c) {
    for (int half = 0; half < 2; ++half) {
      const int s = 2 * c + half;
      for (int l = 0; l < 32; ++l) {
        int q = half == 0 ? (qs[32 * c + l] & 15) : (qs[32 * c + l] >> 4);
        if (qh && (qh[l] & (1 << s))) q += 16;
        out.push_back(static_cast<float>(d * sc[s] * q - dmin * m[s]));
      }
    }
  }
}

inline void ref_q4_k(const uint8_t* p, std::vector<float>& out) {
  ref_k_type1(ref_half(rd16(p)), ref_half(rd16(p + 2)), p + 4, p + 16, nullptr, out);
}

inline void ref_q5_k(const uint8_t* p, std::vector<float>& out) {
  ref_k_type1(ref_half(rd16(p)), ref_half(rd16(p + 2)), p + 4, p + 48, p + 16, out);
}

// q6_k: ql[128] qh[64] scales[16] (int8) d. For each half n (128 elements) and l in 0..31:
// q1 = el. l: ql[l] low | qh[l] bits 0-1; q2 = el. l+32: ql[l+32] low | bits 2-3;
// q3 = el. l+64: ql[l] high | bits 4-5; q4 = el. l+96: ql[l+32] high | bits 6-7; value (q - 32) * d * sc[el / 16].
inline void ref_q6_k(const uint8_t* p, std::vector<float>& out) {
  const uint8_t* ql = p;
  const uint8_t* qh = p + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
  const double d = ref_half(rd16(p + 208));
  float y[256];
  for (int n = 0; n < 2; ++n) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = (ql[64 * n + l] & 15) | ((qh[32 * n + l] & 3) << 4);
      const int q2 = (ql[64 * n + l + 32] & 15) | (((qh[32 * n + l] >> 2) & 3) << 4);
      const int q3 = (ql[64 * n + l] >> 4) | (((qh[32 * n + l] >> 4) & 3) << 4);
      const int q4 = (ql[64 * n + l + 32] >> 4) | (((qh[32 * n + l] >> 6) & 3) << 4);
      const int e = 128 * n + l;
      y[e] = static_cast<float>(d * sc[e / 16] * (q1 - 32));
      y[e + 32] = static_cast<float>(d * sc[(e + 32) / 16] * (q2 - 32));
      y[e + 64] = static_cast<float>(d * sc[(e + 64) / 16] * (q3 - 32));
      y[e + 96] = static_cast<float>(d * sc[(e + 96) / 16] * (q4 - 32));
    }
  }
  out.insert(out.end(), y, y + 256);
}

// Deterministic byte source for building random blocks (xorshift64*).
struct byte_rng {
  uint64_t s;
  explicit byte_rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<uint32_t>((s * 0x2545F4914F6CDD1Dull) >> 32);
  }
  uint8_t byte() { return static_cast<uint8_t>(next() >> 24); }
  // A finite fp16 bit pattern (any sign, subnormals included, no inf/NaN).
  uint16_t finite_half() {
    for (;;) {
      const uint16_t h = static_cast<uint16_t>(next() >> 16);
      if (((h >> 10) & 31) != 31) return h;
    }
  }
};

// Step of a plain min/max quantizer for one block (or sub-block) blk[0..n); a uniform quantizer with step s errs
// by s^2 / 12 per element on average (mean squared). The formats' steps (group sizes in parentheses):
//   q8_0: absmax/127 (32)  q4_0: absmax/8 (32)  q5_0: absmax/16 (32)  q4_1: (max-min)/15 (32)
//   q5_1: (max-min)/31 (32)  q4_k: (max - min(min,0))/15 (sub-blocks of 32)  q5_k: same /31  q6_k: absmax/32 (16)
inline double plain_step(lime::tensor_type t, const float* blk, int n) {
  float lo = blk[0], hi = blk[0], amax = 0.f;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, blk[i]);
    hi = std::max(hi, blk[i]);
    amax = std::max(amax, std::fabs(blk[i]));
  }
  switch (t) {
    case lime::tensor_type::q8_0: return amax / 127.0;
    case lime::tensor_type::q4_0: return amax / 8.0;
    case lime::tensor_type::q5_0: return amax / 16.0;
    case lime::tensor_type::q4_1: return (static_cast<double>(hi) - lo) / 15.0;
    case lime::tensor_type::q5_1: return (static_cast<double>(hi) - lo) / 31.0;
    case lime::tensor_type::q4_k: return (static_cast<double>(hi) - std::min(lo, 0.f)) / 15.0;
    case lime::tensor_type::q5_k: return (static_cast<double>(hi) - std::min(lo, 0.f)) / 31.0;
    case lime::tensor_type::q6_k: return amax / 32.0;
    default: return 0.0;
  }
}

// Bound on worst_step_ratio for every quantized format; why 1.15: see test_quants_roundtrip.cpp.
constexpr double k_max_step_ratio = 1.15;

inline int step_group(lime::tensor_type t) {
  return t == lime::tensor_type::q6_k ? 16 : 32;
}

// RMS error over the RMS error a uniform quantizer with each block's plain step would make, per chunk of
// `chunk` elements (a multiple of 256); the worst chunk.
inline double worst_step_ratio(lime::tensor_type t, const std::vector<float>& x, const std::vector<float>& y,
                               size_t chunk = 256) {
  const int g = step_group(t);
  double worst = 0;
  for (size_t c = 0; c < x.size(); c += chunk) {
    double se = 0, sp = 0;
    for (size_t b = c; b < c + chunk; b += static_cast<size_t>(g)) {
      const double s = plain_step(t, &x[b], g);
      sp += g * s * s / 12.0;
      for (size_t i = b; i < b + static_cast<size_t>(g); ++i) {
        se += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
      }
    }
    worst = std::max(worst, std::sqrt(se / sp));
  }
  return worst;
}

}  // namespace lime::test
