// A scalar stand-in for the 16-lane SIMD traits of kernels/cpu/x86/matmul_tile.h, so the shared SIMD body
// (lane order, K tails, nibble/bit unpacking, tile shapes of every ISA) is checked on any CPU, including
// shapes of ISAs the test machine lacks. Each op is the plain per-lane definition of its intrinsic.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quants.h"

namespace lime::cpu::test {

// rows_for: 1-2 cols -> R1, 3-4 -> R2, more -> R3. Parts > 1: the part tile of PR rows x PC columns, with
// accumulators of 16 / Parts lanes (as vec16_avx2's ymm halves). LaneRows > 0: the lane path's tile of LaneRows
// rows x 16 columns held as LaneVecs vectors, LanePanels panels of 16 columns at a time (vec16_avx2: 6 x 2 ymm x 1;
// vec16_avx512: 12 x 1 zmm x 2).
template <int MaxCols, int R1, int R2, int R3, int Parts = 1, int PR = 1, int PC = 1, int LaneRows = 0,
          int LaneVecs = 1, int LanePanels = 1>
struct vec16_emu {
  struct f {
    float v[16];
  };
  static constexpr int max_cols = MaxCols;
  static constexpr int rows_for(int cols) { return cols <= 2 ? R1 : cols <= 4 ? R2 : R3; }

  static constexpr int parts = Parts, part_rows = PR, part_cols = PC;
  static constexpr int part_lanes = 16 / Parts;
  struct p {
    float v[part_lanes];
  };
  static p part(const f& a, int j) {
    p r;
    std::memcpy(r.v, a.v + j * part_lanes, sizeof r.v);
    return r;
  }
  static p p_zero() { return p{}; }
  static p p_fma(p a, p b, p c) {
    for (int i = 0; i < part_lanes; ++i) c.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
    return c;
  }
  static p p_load(const float* q) {
    p r;
    std::memcpy(r.v, q, sizeof r.v);
    return r;
  }
  static void p_store(float* q, p a) { std::memcpy(q, a.v, sizeof a.v); }
  static p p_add(p a, p b) {
    for (int i = 0; i < part_lanes; ++i) a.v[i] = a.v[i] + b.v[i];
    return a;
  }
  static p p_bcast(const float* q) {
    p r;
    for (int i = 0; i < part_lanes; ++i) r.v[i] = *q;
    return r;
  }
  static void p_transpose8(const float* const* s, float* const* d) {
    float t[8][8];
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j) t[j][i] = s[i][j];
    for (int j = 0; j < 8; ++j) std::memcpy(d[j], t[j], sizeof t[j]);
  }

  static constexpr bool has_lanes = LaneRows > 0;
  static constexpr int lane_rows = LaneRows, lane_vecs = LaneVecs, lane_panels = LanePanels;
  static constexpr int c_width = 16 / LaneVecs;
  struct c {
    float v[c_width];
  };
  static c c_zero() { return c{}; }
  static c c_fma(c a, c b, c acc) {
    for (int i = 0; i < c_width; ++i) acc.v[i] = std::fma(a.v[i], b.v[i], acc.v[i]);
    return acc;
  }
  static c c_load(const float* q) {
    c r;
    std::memcpy(r.v, q, sizeof r.v);
    return r;
  }
  static void c_store(float* q, c a) { std::memcpy(q, a.v, sizeof a.v); }
  static c c_add(c a, c b) {
    for (int i = 0; i < c_width; ++i) a.v[i] = a.v[i] + b.v[i];
    return a;
  }
  static c c_bcast(const float* q) {
    c r;
    for (int i = 0; i < c_width; ++i) r.v[i] = *q;
    return r;
  }

  template <class Op>
  static f map(Op op) {
    f r;
    for (int i = 0; i < 16; ++i) r.v[i] = op(i);
    return r;
  }
  static f zero() { return map([](int) { return 0.f; }); }
  static f set1(float s) { return map([s](int) { return s; }); }
  static f load_f32(const void* p) {
    f r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static void store_f32(float* q, f a) { std::memcpy(q, a.v, sizeof a.v); }
  static uint16_t u16(const void* p, int i) {
    uint16_t h;
    std::memcpy(&h, static_cast<const uint8_t*>(p) + 2 * i, 2);
    return h;
  }
  static f load_f16(const void* p) { return map([p](int i) { return fp16_to_fp32(u16(p, i)); }); }
  static f load_bf16(const void* p) { return map([p](int i) { return bf16_to_fp32(u16(p, i)); }); }
  static f fma(f a, f b, f c) { return map([&](int i) { return std::fma(a.v[i], b.v[i], c.v[i]); }); }
  static f fma_first(f a, f b, f c, int n) {
    return map([&](int i) { return i < n ? std::fma(a.v[i], b.v[i], c.v[i]) : c.v[i]; });
  }
  static f mul(f a, f b) { return map([&](int i) { return a.v[i] * b.v[i]; }); }
  static f add(f a, f b) { return map([&](int i) { return a.v[i] + b.v[i]; }); }
  static f sub(f a, f b) { return map([&](int i) { return a.v[i] - b.v[i]; }); }
  static f i8(const void* p) {
    return map([p](int i) { return static_cast<float>(static_cast<const int8_t*>(p)[i]); });
  }
  static int byte(const void* p, int i) { return static_cast<const uint8_t*>(p)[i]; }
  static f u4_lo(const void* p) { return map([p](int i) { return static_cast<float>(byte(p, i) & 15); }); }
  static f u4_hi(const void* p) { return map([p](int i) { return static_cast<float>(byte(p, i) >> 4); }); }
  static f u5_lo(const void* p, uint32_t bits) {
    return map([=](int i) { return static_cast<float>((byte(p, i) & 15) | (((bits >> i) & 1) << 4)); });
  }
  static f u5_hi(const void* p, uint32_t bits) {
    return map([=](int i) { return static_cast<float>((byte(p, i) >> 4) | (((bits >> i) & 1) << 4)); });
  }
  static float half_to_float(uint16_t h) { return fp16_to_fp32(h); }
  static float fold(f a) {
    for (int w = 8; w >= 1; w /= 2) {
      for (int i = 0; i < w; ++i) a.v[i] = a.v[i] + a.v[i + w];
    }
    return a.v[0];
  }
  static void fold16(const f* v, float* out) {
    for (int i = 0; i < 16; ++i) out[i] = fold(v[i]);
  }
};

}  // namespace lime::cpu::test
