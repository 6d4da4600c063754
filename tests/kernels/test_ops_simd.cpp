// SIMD swiglu, rmsnorm and vector exp/silu (kernels/cpu/x86/ops_*.cpp) against their references, bit for bit:
// exp/silu over strides of every float in [-105, 90], every exponent and the special values; swiglu and rmsnorm over
// lengths, special values and aliasing. Also the shared body over scalar traits (ops_emu.h), on any CPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/math.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/swiglu.h"
#include "tests/kernels/ops_simd_common.h"

namespace lime::cpu {
namespace {

class ops_simd : public variant_test {};

// ---- exp / silu

TEST_P(ops_simd, exp_and_silu_every_float_in_range_by_stride) {
  if (emulated()) GTEST_SKIP() << "the sweep runs on the real ISAs only";
  // Every 211th bit pattern from -105 to 90 (all exponents, mantissas with every low-bit residue).
  const uint32_t pos_end = bits(90.0f), neg_end = bits(-105.0f);
  std::vector<float> xs;
  xs.reserve(1 << 16);
  float bad = 0.0f;
  auto flush = [&]() {
    ASSERT_TRUE(same_as_scalar(v_.exp, exp_f32, xs, &bad)) << "exp_f32(" << bad << ") bits 0x" << std::hex << bits(bad);
    ASSERT_TRUE(same_as_scalar(v_.silu, silu_f32, xs, &bad)) << "silu_f32(" << bad << ")";
    xs.clear();
  };
  for (uint64_t u = 0; u <= pos_end; u += 211) {
    xs.push_back(from_bits(static_cast<uint32_t>(u)));
    if (xs.size() == xs.capacity()) flush();
  }
  for (uint64_t u = 0x80000000u; u <= neg_end; u += 211) {
    xs.push_back(from_bits(static_cast<uint32_t>(u)));
    if (xs.size() == xs.capacity()) flush();
  }
  xs.push_back(90.0f);
  xs.push_back(-105.0f);
  flush();
}

TEST_P(ops_simd, exp_and_silu_every_exponent_and_special_values) {
  std::mt19937 rng(7);
  std::vector<float> xs = special_values();
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t e = 0; e < 256; ++e) {
      for (int k = 0; k < 256; ++k) xs.push_back(from_bits((sign << 31) | (e << 23) | (rng() & 0x7fffffu)));
    }
  }
  float bad = 0.0f;
  EXPECT_TRUE(same_as_scalar(v_.exp, exp_f32, xs, &bad)) << "exp_f32 bits 0x" << std::hex << bits(bad);
  EXPECT_TRUE(same_as_scalar(v_.silu, silu_f32, xs, &bad)) << "silu_f32 bits 0x" << std::hex << bits(bad);
  // Every length of tail, and in place.
  for (int64_t n = 1; n <= 40; ++n) {
    std::vector<float> x(xs.begin(), xs.begin() + n), y(static_cast<size_t>(n) + 1, 123.0f);
    v_.exp(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(y[i]), bits(exp_f32(x[i]))) << "n=" << n << " i=" << i;
    ASSERT_EQ(y[n], 123.0f) << "wrote past the end, n=" << n;
    v_.silu(x.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits(x[i]), bits(silu_f32(xs[i]))) << "in place n=" << n;
  }
}

// ---- swiglu / rmsnorm

const int64_t k_lengths[] = {1, 7, 16, 17, 64, 172, 4096};

TEST_P(ops_simd, swiglu_matches_reference) {
  uint32_t seed = 1;
  for (int64_t n : k_lengths) {
    for (int mode = 0; mode < 3; ++mode) {  // plain, wide range (exp overflow/underflow), special values
      const float r = mode == 0 ? 8.0f : 150.0f;
      const std::vector<float> g = random_vec(n, seed++, r, mode == 2), u = random_vec(n, seed++, 4.0f, mode == 2);
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n) + 1, 7.0f);
      swiglu_ref(g.data(), u.data(), want.data(), n);
      v_.swiglu(g.data(), u.data(), got.data(), n);
      const std::string what = "swiglu n=" + std::to_string(n) + " mode=" + std::to_string(mode);
      EXPECT_SAME_BITS_IF(got.data(), want.data(), n, what, mode == 2);
      EXPECT_EQ(got[static_cast<size_t>(n)], 7.0f) << "wrote past the end";
      std::vector<float> g2 = g, u2 = u;  // out aliasing gate, then up
      v_.swiglu(g2.data(), u.data(), g2.data(), n);
      v_.swiglu(g.data(), u2.data(), u2.data(), n);
      EXPECT_SAME_BITS_IF(g2.data(), want.data(), n, "swiglu out=gate n=" + std::to_string(n), mode == 2);
      EXPECT_SAME_BITS_IF(u2.data(), want.data(), n, "swiglu out=up n=" + std::to_string(n), mode == 2);
    }
  }
}

TEST_P(ops_simd, rmsnorm_matches_reference) {
  uint32_t seed = 100;
  for (int64_t n : k_lengths) {
    for (int mode = 0; mode < 5; ++mode) {  // plain, huge (x^2 overflows), subnormal, specials, mixed scales
      std::vector<float> x = random_vec(n, seed++, 2.0f, mode == 3);
      if (mode == 1) for (float& f : x) f *= 1e19f;
      if (mode == 2) for (float& f : x) f *= 1e-39f;
      if (mode == 4) for (size_t i = 0; i < x.size(); i += 3) x[i] *= 1e12f;
      const std::vector<float> w = random_vec(n, seed++, 1.5f, false);
      for (float eps : {1e-5f, 1e-6f, 0.0f}) {
        for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
          std::vector<float> want(x.size()), got(x.size() + 1, 9.0f);
          rmsnorm_ref(x.data(), wp, want.data(), n, eps);
          v_.rmsnorm(x.data(), wp, got.data(), n, eps);
          const std::string what = "rmsnorm n=" + std::to_string(n) + " mode=" + std::to_string(mode) +
                                   " eps=" + std::to_string(eps) + (wp ? " w" : " no w");
          EXPECT_SAME_BITS_IF(got.data(), want.data(), n, what, mode == 3);
          EXPECT_EQ(got[x.size()], 9.0f) << what << ": wrote past the end";
          std::vector<float> in_place = x;
          v_.rmsnorm(in_place.data(), wp, in_place.data(), n, eps);
          EXPECT_SAME_BITS_IF(in_place.data(), want.data(), n, what + " in place", mode == 3);
        }
      }
    }
  }
  float y = 5.0f;
  v_.rmsnorm(&y, nullptr, &y, 0, 1e-5f);  // n = 0 does nothing
  EXPECT_EQ(y, 5.0f);
}


INSTANTIATE_TEST_SUITE_P(variants, ops_simd, ::testing::Values("emu", "avx2", "avx512", "neon"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The dispatcher (whatever isa_best() picks) against the reference.
TEST(ops_dispatch, swiglu_and_rmsnorm_match_reference) {
  const std::vector<float> g = random_vec(1000, 1, 20.0f, true), u = random_vec(1000, 2, 3.0f, true);
  std::vector<float> want(1000), got(1000);
  swiglu_ref(g.data(), u.data(), want.data(), 1000);
  swiglu(g.data(), u.data(), got.data(), 1000);
  EXPECT_SAME_RESULT(got.data(), want.data(), 1000, "swiglu");
  rmsnorm_ref(g.data(), u.data(), want.data(), 1000, 1e-5f);
  rmsnorm(g.data(), u.data(), got.data(), 1000, 1e-5f);
  EXPECT_SAME_RESULT(got.data(), want.data(), 1000, "rmsnorm");
}

}  // namespace
}  // namespace lime::cpu
