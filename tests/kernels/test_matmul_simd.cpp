// SIMD matmul variants (kernels/cpu/isa.h, kernels/cpu/x86/) against matmul_ref: bitwise equality for every
// float and legacy-quant type over K tails, column counts and row ranges; inf/NaN; raw random blocks (odd scales);
// packed activations; argument checks; the dispatcher (the batch paths: test_matmul_simd_batches.cpp). The shared
// SIMD body also runs with a scalar stand-in for the vector traits (tests/kernels/vec16_emu.h) in the AVX2 and
// AVX-512 tile shapes, on any CPU.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/x86/matmul_tile.h"
#include "tests/kernels/matmul_simd_common.h"

namespace lime::cpu {
namespace {

TEST_P(matmul_simd, every_type_shape_and_row_range_equals_reference) {
  const int64_t n_rows = 37;  // crosses one 24-row strip, leaves tile remainders for every tile height
  for (tensor_type t : k_types) {
    std::vector<int64_t> ks = {32, 64, 256, 288, 768, 4096};  // 288: a partial group of 8 blocks after a full one
    if (is_float(t)) ks.insert(ks.end(), {1, 7, 17, 172, 1000});
    for (int64_t k : ks) {
      const std::vector<uint8_t> w = random_weights(t, n_rows, k, 11 + static_cast<uint32_t>(k));
      const std::vector<float> x = random_floats(static_cast<size_t>(64 * k), 7 + static_cast<uint32_t>(k));
      for (int64_t n_cols : {1, 2, 7, 16, 64}) {
        if (k == 4096 && n_cols == 64) continue;  // the reference alone would dominate the suite's time
        {
          const variant& v = v_;
          for (auto rr : {std::pair<int64_t, int64_t>{0, n_rows}, {5, 30}, {36, 37}, {10, 10}}) {
            expect_equal_to_ref(v, t, w.data(), n_rows, k, x.data(), n_cols, rr.first, rr.second);
          }
        }
      }
    }
  }
}

// Raw random block bytes: every nibble/bit pattern and scales that are subnormal, huge, inf or NaN halves.
TEST_P(matmul_simd, raw_random_blocks_with_odd_scales) {
  const uint16_t scales[] = {0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7e01, 0x8000, 0xb800};
  std::mt19937 rng(99);
  for (tensor_type t : k_types) {
    if (is_float(t)) continue;
    const tensor_type_info& info = tensor_type_traits(t);
    const int64_t n_rows = 19, k = 256, n_cols = 9;  // 9: the dequantized-strip path of batches (AVX2)
    const size_t rb = tensor_row_bytes(t, k);
    std::vector<uint8_t> w(rb * n_rows);
    for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
    // The halves at the start of every block (d, and m for q4_1/q5_1) from the odd list, sometimes.
    for (size_t off = 0; off < w.size(); off += static_cast<size_t>(info.block_bytes)) {
      for (int h = 0; h < 2; ++h) {
        if (rng() % 3 == 0) std::memcpy(&w[off + 2 * h], &scales[rng() % 10], 2);
      }
    }
    const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 5);
    expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, 0, n_rows, true);
    expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), 5, 0, n_rows, true);  // tiles (AVX-512 q4_0: few columns)
    expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), 1, 0, n_rows, true);  // the matvec kernels
  }
}

// An infinite scale with every q above the type's zero point: the reference gives (q - z) * inf = +inf for the
// block, and so +inf for the row; the shortcut fma(q, d, -z d) would give inf - inf = NaN. Each row has the
// infinite block at a different position (first, inside and at the end of a group of 8 blocks, the last block).
TEST_P(matmul_simd, infinite_scale_blocks_give_inf_not_nan) {
  for (tensor_type t : {tensor_type::q4_0, tensor_type::q5_0}) {
    const int64_t n_rows = 9, k = 32 * 11;
    const std::vector<uint8_t> w0 = random_weights(t, n_rows, k, 21);
    std::vector<uint8_t> w = w0;
    const size_t bb = static_cast<size_t>(tensor_type_traits(t).block_bytes), rb = tensor_row_bytes(t, k);
    const int64_t pos[] = {0, 3, 7, 8, 10, 5, 1, 9, 2};
    for (int64_t r = 0; r < n_rows; ++r) {
      uint8_t* blk = &w[rb * static_cast<size_t>(r) + bb * static_cast<size_t>(pos[r])];
      const uint16_t inf_half = 0x7c00;
      std::memcpy(blk, &inf_half, 2);
      if (t == tensor_type::q4_0) {
        std::memset(blk + 2, 0x9a, 16);  // q = 10 and 9: above 8
      } else {
        std::memset(blk + 2, 0xff, 4);   // every high bit set: q >= 16
        std::memset(blk + 6, 0x21, 16);  // q = 17, 18
      }
    }
    const std::vector<float> x = random_floats(static_cast<size_t>(9 * k), 12, 0.5f, 1.f);  // all positive
    for (int64_t n_cols : {1, 3, 9}) {
      std::vector<float> y(static_cast<size_t>(n_cols * n_rows));
      ASSERT_EQ(matmul_ref(make_args(t, w.data(), n_rows, k, x.data(), n_cols, y.data(), 0, n_rows)), kstatus::ok);
      for (float v : y) ASSERT_TRUE(std::isinf(v) && v > 0) << "the reference itself: " << v;
      expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, 0, n_rows);
    }
  }
}

TEST_P(matmul_simd, inf_and_nan_in_activations_propagate_like_reference) {
  const float inf = INFINITY, nan = NAN;
  for (tensor_type t : k_types) {
    // 9: the dequantized strips of batches (AVX2); 50: the lane path (matmul_lanes.h)
    for (int64_t n_cols : {9, 50}) {
      const int64_t n_rows = 11, k = 96;
      const std::vector<uint8_t> w = random_weights(t, n_rows, k, 3);
      std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 4);
      x[0 * k + 5] = inf;                      // column 0: +inf somewhere
      x[1 * k + 17] = -inf;                    // column 1: -inf
      x[2 * k + 40] = nan;                     // column 2: NaN
      x[3 * k + 3] = inf;                      // column 3: inf - inf in one lane
      x[3 * k + 19] = -inf;
      x[4 * k + 95] = 3e38f;                   // column 4: overflow to inf in the fold
      x[4 * k + 94] = 3e38f;
      x[4 * k + 79] = 3e38f;
      expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, 0, n_rows, true);
      for (int64_t c = 0; c < n_cols; ++c)  // each column alone: the matvec kernels
        expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data() + c * k, 1, 0, n_rows, true);
    }
  }
}

TEST_P(matmul_simd, inf_and_nan_in_float_weights_propagate_like_reference) {
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::bf16}) {
    for (auto [k, n_cols] : {std::pair<int64_t, int64_t>{45, 3}, {48, 50}}) {  // 50 columns: the lane path
      const int64_t n_rows = 9;
      std::vector<float> wf = random_floats(static_cast<size_t>(n_rows * k), 8);
      wf[1 * k + 2] = INFINITY;
      wf[2 * k + 44] = NAN;  // in the K tail (k = 45)
      wf[3 * k + 3] = -INFINITY;
      wf[3 * k + 4] = INFINITY;
      const size_t rb = tensor_row_bytes(t, k);
      std::vector<uint8_t> w(rb * n_rows);
      for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(quantize_row(t, &wf[r * k], &w[rb * r], k), kstatus::ok);
      const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 9);
      expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, 0, n_rows, true);
    }
  }
}

// A lane whose products all round to -0 holds -0 (fma(-tiny, tiny, +0) = -0); masked tails must leave such
// lanes alone (padding with fma(0, 0, -0) would make them +0). A sum is -0 only if all 16 lanes are.
TEST_P(matmul_simd, signed_zero_sums_keep_their_sign) {
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::bf16}) {
    for (auto [k, n_cols] : {std::pair<int64_t, int64_t>{1, 2}, {5, 1}, {5, 2}, {16, 1}, {16, 2}, {21, 1}, {21, 2},
                             {40, 1}, {40, 2}, {32, 50}}) {  // 1: the matvecs; 50: the lane path
      const int64_t n_rows = 5;
      std::vector<float> wf(static_cast<size_t>(n_rows * k), -0x1p-24f);  // exact in f16 (subnormal) and bf16
      const size_t rb = tensor_row_bytes(t, k);
      std::vector<uint8_t> w(rb * n_rows);
      for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(quantize_row(t, &wf[r * k], &w[rb * r], k), kstatus::ok);
      const std::vector<float> x(static_cast<size_t>(n_cols * k), 0x1p-127f);  // product 2^-151 rounds to -0
      std::vector<float> y(static_cast<size_t>(n_cols * n_rows), 1.f);
      ASSERT_EQ(v_.fn(make_args(t, w.data(), n_rows, k, x.data(), n_cols, y.data(), 0, n_rows)), kstatus::ok);
      for (float f : y) EXPECT_EQ(bits(f), bits(k >= 16 ? -0.f : 0.f)) << v_.name << " k=" << k;
      expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, 0, n_rows);
    }
  }
}

// x packed once (matmul_args::x_lanes), as the forward pass hands it to every matmul over one input and to every
// thread's row range. The variants that pack (the AVX2 and AVX-512 lane paths and their emulated shapes) read it:
// the reference's bits from a packing split over panel ranges, and different bits from a corrupted one. The
// others ignore it.
TEST_P(matmul_simd, packed_activations_equal_reference) {
  // A kernel reads x_lanes whenever it is given, also where the dispatch prefers another variant (AVX2 on an
  // AVX-512 machine), so each is packed with its own packer; the public entry where it is the dispatched one.
  const bool emu2 = v_.name == "emu_avx2_shape", emu512 = v_.name == "emu_avx512_shape";
  const bool packs = emu2 || emu512 || v_.name == "avx2" || v_.name == "avx512";
  auto pack = [&](const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* xl) {
    if (emu2) {
      lanes::pack_panels<emu_avx2_shape>(x, k, n_cols, p0, p1, xl);
    } else if (emu512) {
      lanes::pack_panels<emu_avx512_shape>(x, k, n_cols, p0, p1, xl);
    } else if (v_.name == isa_name(isa_best())) {
      ASSERT_EQ(matmul_pack_lanes(x, k, n_cols, p0, p1, xl), kstatus::ok);
    } else if (v_.name == "avx2") {
      matmul_pack_lanes_avx2(x, k, n_cols, p0, p1, xl);
    } else {
      matmul_pack_lanes_avx512(x, k, n_cols, p0, p1, xl);
    }
  };
  struct shape {
    tensor_type t;
    int64_t rows, k, cols;
  };
  std::vector<shape> shapes;
  for (tensor_type t : k_types) {
    for (int64_t k : {32, 256}) shapes.push_back({t, 100, k, 48});
    shapes.push_back({t, 53, 64, 80});
    if (is_float(t)) shapes.push_back({t, 30, 48, 50});
  }
  shapes.push_back({tensor_type::f32, 13, 4096, 136});  // more panels than an unpacked column block holds
  shapes.push_back({tensor_type::q4_0, 13, 4096, 136});
  for (const shape& s : shapes) {
    const std::vector<uint8_t> w = random_weights(s.t, s.rows, s.k, 51 + static_cast<uint32_t>(s.k));
    const std::vector<float> x = random_floats(static_cast<size_t>(s.cols * s.k), 52 + static_cast<uint32_t>(s.k));
    const int64_t n_panels = (s.cols + 15) / 16;
    const size_t floats = static_cast<size_t>(n_panels * 16 * s.k);
    std::vector<float> xl(floats, std::nanf("")), whole(floats, std::nanf(""));
    if (packs) {
      if (v_.name == "avx2") {
        ASSERT_EQ(matmul_lanes_floats_avx2(s.k, s.cols), static_cast<int64_t>(floats));
      }
      if (v_.name == "avx512") {
        ASSERT_EQ(matmul_lanes_floats_avx512(s.k, s.cols), static_cast<int64_t>(floats));
      }
      pack(x.data(), s.k, s.cols, 0, n_panels / 2, xl.data());
      pack(x.data(), s.k, s.cols, n_panels / 2, n_panels, xl.data());
      pack(x.data(), s.k, s.cols, 0, n_panels, whole.data());
      ASSERT_EQ(std::memcmp(xl.data(), whole.data(), floats * sizeof(float)), 0) << "k=" << s.k;
    }
    const std::string what = v_.name + " " + tensor_type_name(s.t) + " k=" + std::to_string(s.k);
    std::vector<float> want(static_cast<size_t>(s.cols * s.rows), k_sentinel);
    ASSERT_EQ(matmul_ref(make_args(s.t, w.data(), s.rows, s.k, x.data(), s.cols, want.data(), 0, s.rows)), kstatus::ok);
    for (auto rr : {std::pair<int64_t, int64_t>{0, s.rows}, {5, s.rows - 3}}) {
      std::vector<float> ref_part(want.size(), k_sentinel), got(want.size(), k_sentinel);
      ASSERT_EQ(matmul_ref(make_args(s.t, w.data(), s.rows, s.k, x.data(), s.cols, ref_part.data(), rr.first, rr.second)),
                kstatus::ok);
      matmul_args a = make_args(s.t, w.data(), s.rows, s.k, x.data(), s.cols, got.data(), rr.first, rr.second);
      a.x_lanes = xl.data();
      ASSERT_EQ(v_.fn(a), kstatus::ok);
      ASSERT_EQ(std::memcmp(ref_part.data(), got.data(), got.size() * sizeof(float)), 0) << what;
    }
    if (!packs) continue;
    // One packed element changed (column 0, element k - 1: the last step of lane 15): y must change.
    std::vector<float> bad = xl, got(want.size(), k_sentinel);
    bad[static_cast<size_t>(15 * (s.k / 16) * 16 + (s.k / 16 - 1) * 16)] += 1.0f;
    matmul_args a = make_args(s.t, w.data(), s.rows, s.k, x.data(), s.cols, got.data(), 0, s.rows);
    a.x_lanes = bad.data();
    ASSERT_EQ(v_.fn(a), kstatus::ok);
    EXPECT_NE(std::memcmp(want.data(), got.data(), got.size() * sizeof(float)), 0) << what << ": x_lanes was not read";
  }
}

TEST(matmul_pack_lanes, sizes_and_argument_checks) {
  const std::vector<float> x(64 * 48, 1.f);
  std::vector<float> xl(64 * 48);
  if (isa_best() != isa::avx2 && isa_best() != isa::avx512) {  // only the x86 lane paths take packed activations
    EXPECT_EQ(matmul_lanes_floats(64, 48), 0);
    EXPECT_EQ(matmul_pack_lanes(x.data(), 64, 48, 0, 3, xl.data()), kstatus::bad_argument);
    return;
  }
  EXPECT_EQ(matmul_lanes_floats(64, 48), 48 * 64);
  EXPECT_EQ(matmul_lanes_floats(64, 50), 64 * 64);       // the last panel padded to 16 columns
  EXPECT_EQ(matmul_lanes_floats(64, 47), 0);             // too few columns for the lane path at this K
  EXPECT_EQ(matmul_lanes_floats(2048, 32), 32 * 2048);   // at K >= 1536 from 32 columns
  EXPECT_EQ(matmul_lanes_floats(72, 64), 0);             // K not a multiple of 16
  EXPECT_EQ(matmul_lanes_floats(0, 64), 0);
  EXPECT_EQ(matmul_pack_lanes(x.data(), 64, 48, 0, 3, xl.data()), kstatus::ok);
  EXPECT_EQ(matmul_pack_lanes(x.data(), 64, 48, 2, 4, xl.data()), kstatus::bad_argument);  // past the last panel
  EXPECT_EQ(matmul_pack_lanes(x.data(), 64, 48, 2, 1, xl.data()), kstatus::bad_argument);
  EXPECT_EQ(matmul_pack_lanes(x.data(), 64, 48, -1, 1, xl.data()), kstatus::bad_argument);
  EXPECT_EQ(matmul_pack_lanes(nullptr, 64, 48, 0, 3, xl.data()), kstatus::bad_argument);
  EXPECT_EQ(matmul_pack_lanes(x.data(), 64, 48, 0, 3, nullptr), kstatus::bad_argument);
  EXPECT_EQ(matmul_pack_lanes(x.data(), 72, 48, 0, 3, xl.data()), kstatus::bad_argument);
}

// The packed layout does not depend on the variant: the AVX2 and AVX-512 packers (and the emulated shapes') give
// the same floats, so a batch packed once serves whichever kernel runs.
TEST(matmul_pack_lanes, layout_is_the_same_for_every_variant) {
  const int64_t k = 256, n_cols = 50, n_panels = 4;
  std::vector<float> x(static_cast<size_t>(n_cols * k));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.25f - 7.f;
  const size_t floats = static_cast<size_t>(n_panels * 16 * k);
  std::vector<float> e2(floats, 1.f), e512(floats, 2.f);
  lanes::pack_panels<emu_avx2_shape>(x.data(), k, n_cols, 0, n_panels, e2.data());
  lanes::pack_panels<emu_avx512_shape>(x.data(), k, n_cols, 0, n_panels, e512.data());
  EXPECT_EQ(std::memcmp(e2.data(), e512.data(), floats * sizeof(float)), 0);
  EXPECT_EQ(e2[0], x[0]);                                  // panel 0, lane 0, step 0, column 0: x[0][0]
  EXPECT_EQ(e2[16 * 1 + 3], x[static_cast<size_t>(3 * k + 16)]);  // lane 0, step 1, column 3: x[3][16]
  EXPECT_EQ(e2[static_cast<size_t>(3 * 16 * k + 16 * (k / 16) + 2)], 0.f);  // panel 3, lane 1, column 2 (50): pad
  for (isa i : {isa::avx2, isa::avx512}) {
    if (!isa_available(i)) continue;
    std::vector<float> got(floats, 3.f);
    if (i == isa::avx2) matmul_pack_lanes_avx2(x.data(), k, n_cols, 0, n_panels, got.data());
    else matmul_pack_lanes_avx512(x.data(), k, n_cols, 0, n_panels, got.data());
    EXPECT_EQ(std::memcmp(e2.data(), got.data(), floats * sizeof(float)), 0) << isa_name(i);
  }
}

TEST_P(matmul_simd, empty_shapes_match_reference) {
  const std::vector<uint8_t> w = random_weights(tensor_type::q8_0, 3, 32, 1);
  const std::vector<float> x(64, 1.f);
  for (tensor_type t : k_types) {
    // k = 0 (float types: every sum is +0), no rows, no columns.
    if (is_float(t)) expect_equal_to_ref(v_, t, w.data(), 3, 0, x.data(), 2, 0, 3);
    expect_equal_to_ref(v_, t, w.data(), 0, 32, x.data(), 2, 0, 0);
    expect_equal_to_ref(v_, t, w.data(), 3, 32, x.data(), 0, 0, 3);
  }
}

TEST_P(matmul_simd, argument_checks_match_reference) {
  const std::vector<uint8_t> w = random_weights(tensor_type::q4_0, 4, 64, 1);
  const std::vector<float> x(64 * 2, 1.f);
  std::vector<float> y(8);
  struct bad {
    matmul_args a;
    kstatus want;
  };
  const bad cases[] = {
      {make_args(tensor_type::q4_0, nullptr, 4, 64, x.data(), 2, y.data(), 0, 4), kstatus::bad_argument},
      {make_args(tensor_type::q4_0, w.data(), 4, 64, nullptr, 2, y.data(), 0, 4), kstatus::bad_argument},
      {make_args(tensor_type::q4_0, w.data(), 4, 64, x.data(), 2, nullptr, 0, 4), kstatus::bad_argument},
      {make_args(tensor_type::q4_0, w.data(), 4, 48, x.data(), 2, y.data(), 0, 4), kstatus::bad_shape},
      {make_args(tensor_type::q4_0, w.data(), 4, -32, x.data(), 2, y.data(), 0, 4), kstatus::bad_shape},
      {make_args(tensor_type::q4_0, w.data(), 4, 64, x.data(), 2, y.data(), 0, 5), kstatus::bad_argument},
      {make_args(tensor_type::q4_0, w.data(), 4, 64, x.data(), 2, y.data(), 3, 2), kstatus::bad_argument},
      {make_args(tensor_type::q4_0, w.data(), 4, 64, x.data(), 2, y.data(), -1, 2), kstatus::bad_argument},
      {make_args(tensor_type::f32, w.data(), 4, 64, x.data(), -1, y.data(), 0, 4), kstatus::bad_shape},
      {make_args(tensor_type::q8_1, w.data(), 4, 64, x.data(), 2, y.data(), 0, 4), kstatus::unsupported_type},
  };
  for (const bad& b : cases) {
    EXPECT_EQ(matmul_ref(b.a), b.want);
    EXPECT_EQ(matmul(b.a), b.want);
    EXPECT_EQ(v_.fn(b.a), b.want) << v_.name;
  }
}

TEST(matmul_dispatch, variants_and_fallback) {
  EXPECT_STREQ(isa_name(isa::ref), "ref");
  EXPECT_STREQ(isa_name(isa::avx2), "avx2");
  EXPECT_STREQ(isa_name(isa::avx512), "avx512");
  EXPECT_STREQ(isa_name(isa::neon), "neon");
  EXPECT_TRUE(isa_available(isa::ref));
  EXPECT_TRUE(isa_available(isa_best()));
#if LIME_ARCH_X86
  EXPECT_FALSE(isa_available(isa::neon));
  if (isa_available(isa::avx512)) {
    EXPECT_TRUE(isa_available(isa::avx2));
  }
#endif
#if LIME_ARCH_ARM64
  EXPECT_FALSE(isa_available(isa::avx2));
  EXPECT_FALSE(isa_available(isa::avx512));
#endif
  // LIME_ISA lowers the choice when it names an available variant (run e.g. LIME_ISA=ref to check).
  const char* env = std::getenv("LIME_ISA");
  if (env) {
    for (isa i : {isa::ref, isa::avx2, isa::avx512, isa::neon}) {
      if (std::strcmp(env, isa_name(i)) == 0 && isa_available(i)) {
        EXPECT_EQ(isa_best(), i);
      }
    }
  } else {
    if (isa_available(isa::avx512)) {
      EXPECT_EQ(isa_best(), isa::avx512);
    } else if (isa_available(isa::avx2)) {
      EXPECT_EQ(isa_best(), isa::avx2);
    }
  }
  // An unavailable variant is refused; every available one (and matmul) matches the reference.
  const std::vector<uint8_t> w = random_weights(tensor_type::q4_1, 6, 64, 2);
  const std::vector<float> x = random_floats(64 * 3, 3);
  std::vector<float> want(18), got(18);
  const matmul_args ref_args = make_args(tensor_type::q4_1, w.data(), 6, 64, x.data(), 3, want.data(), 0, 6);
  ASSERT_EQ(matmul_ref(ref_args), kstatus::ok);
  for (isa i : {isa::ref, isa::avx2, isa::avx512, isa::neon}) {
    matmul_args a = ref_args;
    a.y = got.data();
    if (!isa_available(i)) {
      EXPECT_EQ(matmul_with(i, a), kstatus::bad_argument) << isa_name(i);
      continue;
    }
    std::fill(got.begin(), got.end(), 0.f);
    ASSERT_EQ(matmul_with(i, a), kstatus::ok) << isa_name(i);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), sizeof(float) * 18), 0) << isa_name(i);
  }
  matmul_args a = ref_args;
  a.y = got.data();
  ASSERT_EQ(matmul(a), kstatus::ok);
  EXPECT_EQ(std::memcmp(want.data(), got.data(), sizeof(float) * 18), 0);
}

INSTANTIATE_TEST_SUITE_P(variants, matmul_simd,
                         ::testing::ValuesIn(k_variant_names), variant_test_name);

}  // namespace
}  // namespace lime::cpu
