// rmsnorm_ref, softmax_ref, swiglu_ref, rope_inv_freq and rope_ref against double-precision references,
// their documented operation order (bit-exact where the order is the definition) and edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/canonical.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/swiglu.h"

namespace lime::cpu {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// ---- rmsnorm

TEST(rmsnorm_ref, matches_double_and_its_definition) {
  for (int64_t n : {1, 5, 16, 100, 4096}) {
    std::vector<float> x = random_floats(n, 1 + static_cast<uint32_t>(n), -3.f, 3.f);
    std::vector<float> w = random_floats(n, 2 + static_cast<uint32_t>(n), 0.5f, 1.5f);
    const float eps = 1e-5f;
    std::vector<float> y(n), y_now(n);
    rmsnorm_ref(x.data(), w.data(), y.data(), n, eps);
    rmsnorm_ref(x.data(), nullptr, y_now.data(), n, eps);
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(ss / n + eps);
    const float scale_f = 1.0f / std::sqrt(dot_canonical(x.data(), x.data(), n) / static_cast<float>(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = x[i] * scale * w[i];
      EXPECT_NEAR(y[i], ref, 1e-5 * std::fabs(ref) + 1e-7) << n << " " << i;
      EXPECT_NEAR(y_now[i], x[i] * scale, 1e-5 * std::fabs(x[i] * scale) + 1e-7);
      EXPECT_EQ(bits(y[i]), bits((x[i] * scale_f) * w[i]));
      EXPECT_EQ(bits(y_now[i]), bits(x[i] * scale_f));
    }
    // In place gives the same bits.
    std::vector<float> z = x;
    rmsnorm_ref(z.data(), w.data(), z.data(), n, eps);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(bits(z[i]), bits(y[i]));
  }
}

TEST(rmsnorm_ref, zero_row_uses_eps) {
  std::vector<float> x(8, 0.0f), w(8, 2.0f), y(8, 1.0f);
  rmsnorm_ref(x.data(), w.data(), y.data(), 8, 1e-6f);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

// ---- softmax

TEST(softmax_ref, matches_double) {
  for (int64_t n : {2, 17, 1000, 32000}) {
    std::vector<float> x = random_floats(n, 3 + static_cast<uint32_t>(n), -20.f, 20.f);
    std::vector<float> y = x;
    softmax_ref(y.data(), n);
    double m = x[0];
    for (float v : x) m = std::max(m, static_cast<double>(v));
    double sum = 0;
    for (float v : x) sum += std::exp(v - m);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(x[i] - m) / sum;
      EXPECT_NEAR(y[i], ref, 4e-6 * ref + 1e-30) << n << " " << i;
      total += y[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(softmax_ref, follows_its_definition_bit_for_bit) {
  const int64_t n = 77;
  std::vector<float> x = random_floats(n, 4, -8.f, 8.f);
  std::vector<float> y = x;
  softmax_ref(y.data(), n);
  float m = x[0];
  for (float v : x) m = v > m ? v : m;
  std::vector<float> e(n);
  for (int64_t i = 0; i < n; ++i) e[i] = exp_f32(x[i] - m);
  const float sum = sum_canonical(e.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(bits(y[i]), bits(e[i] / sum));
}

TEST(softmax_ref, special_cases) {
  const float ninf = -std::numeric_limits<float>::infinity();
  float one[1] = {123.0f};
  softmax_ref(one, 1);
  EXPECT_EQ(one[0], 1.0f);
  float masked[5] = {ninf, 1.0f, ninf, 1.0f, ninf};  // -inf entries (causal mask) become exactly 0
  softmax_ref(masked, 5);
  EXPECT_EQ(masked[0], 0.0f);
  EXPECT_EQ(masked[2], 0.0f);
  EXPECT_EQ(masked[4], 0.0f);
  EXPECT_EQ(masked[1], 0.5f);
  EXPECT_EQ(masked[3], 0.5f);
  float big[3] = {1000.0f, 999.0f, -1000.0f};  // no overflow: max is subtracted first
  softmax_ref(big, 3);
  EXPECT_NEAR(big[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(big[1], std::exp(-1.0) / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_EQ(big[2], 0.0f);
  std::vector<float> flat(10, 3.0f);
  softmax_ref(flat.data(), 10);
  for (float v : flat) EXPECT_EQ(v, 0.1f);
}

// ---- swiglu

TEST(swiglu_ref, matches_double_and_allows_aliasing) {
  const int64_t n = 1000;
  std::vector<float> g = random_floats(n, 5, -12.f, 12.f), u = random_floats(n, 6, -3.f, 3.f);
  std::vector<float> out(n);
  swiglu_ref(g.data(), u.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double ref = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    EXPECT_NEAR(out[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << i;
    EXPECT_EQ(bits(out[i]), bits(silu_f32(g[i]) * u[i]));
  }
  std::vector<float> a = g, b = u;
  swiglu_ref(a.data(), u.data(), a.data(), n);
  swiglu_ref(g.data(), b.data(), b.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(bits(a[i]), bits(out[i]));
    EXPECT_EQ(bits(b[i]), bits(out[i]));
  }
}

// ---- rope

TEST(rope_inv_freq, matches_pow_with_scale_and_factors) {
  const int32_t n_rot = 128;
  std::vector<double> f(n_rot / 2), fs(n_rot / 2);
  rope_inv_freq(f.data(), n_rot, 500000.0, 1.0, nullptr);
  for (int32_t i = 0; i < n_rot / 2; ++i) {
    const double ref = std::pow(500000.0, -2.0 * i / n_rot);
    EXPECT_NEAR(f[i], ref, 1e-14 * ref) << i;
  }
  EXPECT_EQ(f[0], 1.0);
  std::vector<float> factors(n_rot / 2);
  for (int32_t i = 0; i < n_rot / 2; ++i) factors[i] = 1.0f + static_cast<float>(i % 5);
  rope_inv_freq(fs.data(), n_rot, 500000.0, 0.25, factors.data());
  for (int32_t i = 0; i < n_rot / 2; ++i) EXPECT_EQ(fs[i], 0.25 * f[i] / static_cast<double>(factors[i])) << i;
}

TEST(rope_ref, position_zero_is_identity) {
  const int32_t n_head = 3, head_dim = 64, n_rot = 64;
  std::vector<double> inv(n_rot / 2);
  rope_inv_freq(inv.data(), n_rot, 10000.0, 1.0, nullptr);
  for (bool neox : {false, true}) {
    std::vector<float> x = random_floats(n_head * head_dim, 7), y = x;
    rope_ref(y.data(), n_head, head_dim, n_rot, 0, inv.data(), neox);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(bits(y[i]), bits(x[i])) << i;
  }
}

TEST(rope_ref, hand_checked_pairs_normal_and_neox) {
  // head_dim 4, base 10000: inv_freq = {1, 0.01}. x = (1, 0, 0, 1) at pos 1.
  double inv[2];
  rope_inv_freq(inv, 4, 10000.0, 1.0, nullptr);
  EXPECT_EQ(inv[0], 1.0);
  EXPECT_NEAR(inv[1], 0.01, 1e-17);
  float xn[4] = {1, 0, 0, 1};
  rope_ref(xn, 1, 4, 4, 1, inv, false);  // pairs (0,1) by 1 rad, (2,3) by 0.01 rad
  EXPECT_NEAR(xn[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(xn[1], std::sin(1.0), 1e-7);
  EXPECT_NEAR(xn[2], -std::sin(0.01), 1e-7);
  EXPECT_NEAR(xn[3], std::cos(0.01), 1e-7);
  float xx[4] = {1, 0, 0, 1};
  rope_ref(xx, 1, 4, 4, 1, inv, true);  // pairs (0,2) by 1 rad, (1,3) by 0.01 rad
  EXPECT_NEAR(xx[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(xx[2], std::sin(1.0), 1e-7);
  EXPECT_NEAR(xx[1], -std::sin(0.01), 1e-7);
  EXPECT_NEAR(xx[3], std::cos(0.01), 1e-7);
}

TEST(rope_ref, rotates_pairs_by_pos_times_inv_freq) {
  const int32_t n_head = 4, head_dim = 96, n_rot = 64;  // dims 64..95 are not rotated
  std::vector<double> inv(n_rot / 2);
  rope_inv_freq(inv.data(), n_rot, 10000.0, 1.0, nullptr);
  for (bool neox : {false, true}) {
    for (int32_t pos : {1, 17, 4095, 131071}) {
      std::vector<float> x = random_floats(n_head * head_dim, 8 + pos), y = x;
      rope_ref(y.data(), n_head, head_dim, n_rot, pos, inv.data(), neox);
      for (int32_t h = 0; h < n_head; ++h) {
        const float* xh = &x[h * head_dim];
        const float* yh = &y[h * head_dim];
        for (int32_t i = 0; i < n_rot / 2; ++i) {
          const int32_t i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
          const double th = static_cast<double>(pos) * std::pow(10000.0, -2.0 * i / n_rot);
          const double r0 = xh[i0] * std::cos(th) - xh[i1] * std::sin(th);
          const double r1 = xh[i0] * std::sin(th) + xh[i1] * std::cos(th);
          EXPECT_NEAR(yh[i0], r0, 3e-7) << neox << " pos " << pos << " i " << i;
          EXPECT_NEAR(yh[i1], r1, 3e-7) << neox << " pos " << pos << " i " << i;
          // The documented fp32 order: (c, s) rounded from sincos_f64, products rounded, no fma.
          double sd, cd;
          sincos_f64(static_cast<double>(pos) * inv[i], &sd, &cd);
          const float c = static_cast<float>(cd), s = static_cast<float>(sd);
          const float p0 = xh[i0] * c, p1 = xh[i1] * s, p2 = xh[i0] * s, p3 = xh[i1] * c;
          EXPECT_EQ(bits(yh[i0]), bits(p0 - p1));
          EXPECT_EQ(bits(yh[i1]), bits(p2 + p3));
        }
        for (int32_t d = n_rot; d < head_dim; ++d) EXPECT_EQ(bits(yh[d]), bits(xh[d])) << d;
      }
    }
  }
}

// The batch's (c, s) table and the table-driven rotation give rope_ref's bits: every token at once, normal and
// NeoX pairs, partial rotation, positions up to 2^17, and an odd token count; bad geometry rotates nothing.
TEST(rope_apply, table_driven_rotation_equals_rope_ref) {
  const int32_t n_head = 5, head_dim = 96, n_rot = 64;
  std::vector<double> inv(n_rot / 2);
  rope_inv_freq(inv.data(), n_rot, 500000.0, 1.0, nullptr);
  const std::vector<int32_t> pos = {0, 1, 2, 17, 255, 4095, 4097, 131071, 3};
  const int64_t n_tok = static_cast<int64_t>(pos.size()), per_tok = n_head * head_dim;
  std::vector<float> cs(static_cast<size_t>(n_tok * n_rot), -1.0f);
  rope_cos_sin(pos.data(), n_tok, n_rot, inv.data(), cs.data());
  for (bool neox : {false, true}) {
    const std::vector<float> x = random_floats(static_cast<size_t>(n_tok * per_tok), neox ? 21 : 22);
    std::vector<float> want = x, got = x;
    for (int64_t t = 0; t < n_tok; ++t) {
      rope_ref(&want[t * per_tok], n_head, head_dim, n_rot, pos[t], inv.data(), neox);
      rope_apply(&got[t * per_tok], n_head, head_dim, n_rot, &cs[t * n_rot], neox);
    }
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(bits(got[i]), bits(want[i])) << neox << " " << i;
    EXPECT_NE(bits(got[per_tok + 0]), bits(x[per_tok + 0]));  // position 1 rotates pair 0
  }
  std::vector<float> y = random_floats(8, 23), y0 = y;
  rope_apply(y.data(), 1, 8, 10, cs.data(), false);  // n_rot > head_dim
  rope_apply(y.data(), 1, 8, 3, cs.data(), false);   // odd n_rot
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(bits(y[i]), bits(y0[i]));
}

TEST(rope_ref, freq_factors_slow_down_rotation) {
  const int32_t n_rot = 8;
  std::vector<float> factors = {1.f, 2.f, 4.f, 8.f};
  std::vector<double> inv(4), inv_plain(4);
  rope_inv_freq(inv.data(), n_rot, 10000.0, 1.0, factors.data());
  rope_inv_freq(inv_plain.data(), n_rot, 10000.0, 1.0, nullptr);
  // Rotating pair i by pos with factor f equals rotating without factor at the angle divided by f.
  std::vector<float> x = random_floats(n_rot, 9), y = x;
  rope_ref(y.data(), 1, n_rot, n_rot, 40, inv.data(), false);
  for (int i = 0; i < 4; ++i) {
    const double th = 40.0 * inv_plain[i] / factors[i];
    EXPECT_NEAR(y[2 * i], x[2 * i] * std::cos(th) - x[2 * i + 1] * std::sin(th), 3e-7) << i;
    EXPECT_NEAR(y[2 * i + 1], x[2 * i] * std::sin(th) + x[2 * i + 1] * std::cos(th), 3e-7) << i;
  }
}

}  // namespace
}  // namespace lime::cpu
