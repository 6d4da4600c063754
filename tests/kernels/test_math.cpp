// Accuracy and special values of lime's own exp/silu (fp32) and exp/log/pow/sincos (fp64), measured against
// libm in double (libm is used only here, as the yardstick).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/math.h"

namespace lime::cpu {
namespace {

constexpr float k_inf_f = std::numeric_limits<float>::infinity();
constexpr double k_inf = std::numeric_limits<double>::infinity();

// Distance in representable values (adjacent floats differ by 1; -0 and +0 are the same point).
int64_t ordered_f32(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i < 0 ? -static_cast<int64_t>(i & 0x7fffffff) : i;
}
int64_t ulp_dist_f32(float a, float b) { return std::llabs(ordered_f32(a) - ordered_f32(b)); }

int64_t ordered_f64(double d) {
  int64_t i;
  std::memcpy(&i, &d, sizeof i);
  return i < 0 ? -(i & 0x7fffffffffffffffll) : i;
}
int64_t ulp_dist_f64(double a, double b) { return std::llabs(ordered_f64(a) - ordered_f64(b)); }

float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

struct exp_sweep {
  int64_t points = 0;
  int64_t max_ulp = 0;
  float worst = 0.f;
  void check(float x) {
    const float ref = static_cast<float>(std::exp(static_cast<double>(x)));
    const int64_t d = ulp_dist_f32(exp_f32(x), ref);
    if (d > max_ulp) {
      max_ulp = d;
      worst = x;
    }
    ++points;
  }
};

TEST(math_exp_f32, within_one_ulp_across_the_range) {
  exp_sweep sw;
  // Every 61st float bit pattern in the interesting range [-104, 89] (both signs): about 17.5M points.
  for (uint64_t u = 0; u < 0x100000000ull; u += 61) {
    const float x = f32_from_bits(static_cast<uint32_t>(u));
    if (x >= -104.5f && x <= 89.5f) sw.check(x);
  }
  // Every float whose result is subnormal or underflows ([-104, -87.3]) and every float near overflow.
  for (float x = -104.5f; x < -87.3f; x = std::nextafter(x, 0.f)) sw.check(x);
  for (float x = 88.5f; x < 89.5f; x = std::nextafter(x, k_inf_f)) sw.check(x);
  std::printf("exp_f32: %lld points, max error %lld ulp (at %a) vs libm double rounded to float\n",
              static_cast<long long>(sw.points), static_cast<long long>(sw.max_ulp), static_cast<double>(sw.worst));
  EXPECT_GT(sw.points, 10000000);
  EXPECT_LE(sw.max_ulp, 1) << "worst x = " << sw.worst;
}

TEST(math_exp_f32, special_values) {
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-k_inf_f), 0.0f);
  EXPECT_EQ(exp_f32(k_inf_f), k_inf_f);
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(exp_f32(89.0f), k_inf_f);
  EXPECT_EQ(exp_f32(1000.0f), k_inf_f);
  EXPECT_EQ(exp_f32(-104.0f), 0.0f);
  EXPECT_EQ(exp_f32(-1000.0f), 0.0f);
  // Largest finite result and smallest subnormal result.
  EXPECT_EQ(exp_f32(88.72283f), static_cast<float>(std::exp(static_cast<double>(88.72283f))));
  EXPECT_LT(exp_f32(88.72283f), k_inf_f);
  EXPECT_EQ(exp_f32(88.7229f), k_inf_f);
  EXPECT_EQ(exp_f32(-103.9f), std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(exp_f32(1.0f), static_cast<float>(std::exp(1.0)));
  EXPECT_EQ(exp_f32(-1.0f), static_cast<float>(std::exp(-1.0)));
}

TEST(math_silu_f32, values_and_limits) {
  std::mt19937 rng(7);
  // Below about -88.7, e^-x overflows and the formula gives -0 instead of a tiny negative value (checked below).
  std::uniform_real_distribution<float> dist(-88.f, 90.f);
  int64_t max_ulp = 0;
  for (int i = 0; i < 200000; ++i) {
    const float x = i < 1000 ? dist(rng) * 0.05f : dist(rng);
    const double ref = static_cast<double>(x) / (1.0 + std::exp(-static_cast<double>(x)));
    const int64_t d = ulp_dist_f32(silu_f32(x), static_cast<float>(ref));
    if (d > max_ulp) max_ulp = d;
  }
  EXPECT_LE(max_ulp, 3);
  EXPECT_EQ(silu_f32(0.0f), 0.0f);
  EXPECT_EQ(silu_f32(k_inf_f), k_inf_f);
  const float neg_inf = silu_f32(-k_inf_f);
  EXPECT_EQ(neg_inf, 0.0f);
  EXPECT_TRUE(std::signbit(neg_inf));
  for (float x : {-88.0f, -89.0f, -100.0f, -1e10f, -std::numeric_limits<float>::max()}) {
    const float y = silu_f32(x);
    EXPECT_FALSE(std::isnan(y)) << x;
    EXPECT_LE(y, 0.0f) << x;
    EXPECT_GT(y, -1e-30f) << x;
  }
  EXPECT_TRUE(std::isnan(silu_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST(math_exp_f64, accuracy_and_special_values) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> wide(-745.5, 709.9);
  std::uniform_real_distribution<double> narrow(-2.0, 2.0);
  std::uniform_real_distribution<double> subnormal(-745.2, -708.0);
  int64_t max_ulp = 0;
  for (int i = 0; i < 1000000; ++i) {
    const double x = i % 3 == 0 ? wide(rng) : (i % 3 == 1 ? narrow(rng) : subnormal(rng));
    const int64_t d = ulp_dist_f64(exp_f64(x), std::exp(x));
    if (d > max_ulp) max_ulp = d;
  }
  std::printf("exp_f64: max error %lld ulp\n", static_cast<long long>(max_ulp));
  EXPECT_LE(max_ulp, 2);
  EXPECT_EQ(exp_f64(0.0), 1.0);
  EXPECT_EQ(exp_f64(-k_inf), 0.0);
  EXPECT_EQ(exp_f64(k_inf), k_inf);
  EXPECT_EQ(exp_f64(709.8), k_inf);
  EXPECT_EQ(exp_f64(-745.2), 0.0);
  EXPECT_EQ(exp_f64(-745.1), std::numeric_limits<double>::denorm_min());
  EXPECT_TRUE(std::isnan(exp_f64(std::numeric_limits<double>::quiet_NaN())));
}

TEST(math_log_f64, accuracy_and_special_values) {
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> near_one(0.5, 2.0);
  int64_t max_ulp = 0;
  for (int i = 0; i < 1000000; ++i) {
    double x;
    if (i % 2 == 0) {
      x = near_one(rng);
    } else {  // any positive finite double, subnormals included
      uint64_t u = rng() & 0x7fffffffffffffffull;
      if ((u >> 52) == 0x7ff || u == 0) continue;
      std::memcpy(&x, &u, sizeof x);
    }
    const int64_t d = ulp_dist_f64(log_f64(x), std::log(x));
    if (d > max_ulp) max_ulp = d;
  }
  std::printf("log_f64: max error %lld ulp\n", static_cast<long long>(max_ulp));
  EXPECT_LE(max_ulp, 2);
  EXPECT_EQ(log_f64(1.0), 0.0);
  EXPECT_EQ(log_f64(0.0), -k_inf);
  EXPECT_EQ(log_f64(k_inf), k_inf);
  EXPECT_TRUE(std::isnan(log_f64(-1.0)));
  EXPECT_TRUE(std::isnan(log_f64(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_LE(ulp_dist_f64(log_f64(std::numeric_limits<double>::denorm_min()), std::log(4.9406564584124654e-324)), 1);
}

TEST(math_pow_f64, matches_libm_for_rope_like_arguments) {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> base(1.5, 1e6);
  std::uniform_real_distribution<double> expo(-1.0, 1.0);
  double worst = 0;
  for (int i = 0; i < 500000; ++i) {
    const double b = base(rng), e = expo(rng);
    // exp(e*log(b)) amplifies log's rounding by |e*log(b)|: allow a few ulp per unit of it.
    const double y = std::fabs(e * std::log(b));
    const double r = static_cast<double>(ulp_dist_f64(pow_f64(b, e), std::pow(b, e))) / (1.0 + y);
    if (r > worst) worst = r;
  }
  std::printf("pow_f64: max error %.2f ulp per (1 + |e*log(b)|)\n", worst);
  EXPECT_LE(worst, 3.0);
  EXPECT_EQ(pow_f64(10000.0, 0.0), 1.0);
  EXPECT_EQ(pow_f64(1.0, -0.75), 1.0);
  EXPECT_LE(ulp_dist_f64(pow_f64(10000.0, -0.5), 0.01), 4);
  EXPECT_LE(ulp_dist_f64(pow_f64(2.0, 10.0), 1024.0), 32);
}

TEST(math_sincos_f64, accuracy_and_special_values) {
  std::mt19937_64 rng(19);
  std::uniform_real_distribution<double> mant(1.0, 2.0);
  int64_t max_s = 0, max_c = 0;
  double max_abs = 0;
  for (int i = 0; i < 2000000; ++i) {
    // Log-uniform magnitudes from 2^-30 to 2^30 (rope angles span pos * inv_freq), both signs.
    double x = std::ldexp(mant(rng), static_cast<int>(rng() % 60) - 30);
    if (rng() & 1) x = -x;
    double s, c;
    sincos_f64(x, &s, &c);
    const double rs = std::sin(x), rc = std::cos(x);
    max_s = std::max(max_s, ulp_dist_f64(s, rs));
    max_c = std::max(max_c, ulp_dist_f64(c, rc));
    max_abs = std::max(max_abs, std::max(std::fabs(s - rs), std::fabs(c - rc)));
  }
  std::printf("sincos_f64: max error sin %lld ulp, cos %lld ulp, abs %.3g\n", static_cast<long long>(max_s),
              static_cast<long long>(max_c), max_abs);
  EXPECT_LE(max_s, 2);
  EXPECT_LE(max_c, 2);
  EXPECT_LE(max_abs, 2.3e-16);
  // Integer positions times typical inverse frequencies (what rope asks for).
  for (int pos = 0; pos < 70000; pos += 7) {
    for (double f : {1.0, 0.1, 0.0133352143216332, 1e-4}) {
      const double x = pos * f;
      double s, c;
      sincos_f64(x, &s, &c);
      ASSERT_LE(ulp_dist_f64(s, std::sin(x)), 2) << x;
      ASSERT_LE(ulp_dist_f64(c, std::cos(x)), 2) << x;
    }
  }
  double s, c;
  sincos_f64(0.0, &s, &c);
  EXPECT_EQ(s, 0.0);
  EXPECT_EQ(c, 1.0);
  sincos_f64(-0.0, &s, &c);
  EXPECT_TRUE(std::signbit(s));
  EXPECT_EQ(c, 1.0);
  sincos_f64(k_inf, &s, &c);
  EXPECT_TRUE(std::isnan(s) && std::isnan(c));
  sincos_f64(std::numeric_limits<double>::quiet_NaN(), &s, &c);
  EXPECT_TRUE(std::isnan(s) && std::isnan(c));
  sincos_f64(1e-300, &s, &c);
  EXPECT_EQ(s, 1e-300);
  EXPECT_EQ(c, 1.0);
}

}  // namespace
}  // namespace lime::cpu
