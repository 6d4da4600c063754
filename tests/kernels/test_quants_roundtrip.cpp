// quantize_row -> dequantize_row on random data: error bounds per type, byte-exact requantization for the
// types whose format makes it a fixed point, determinism and block independence.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/quants.h"
#include "kernels/tensor_type.h"
#include "tests/kernels/test_quants_ref.h"

namespace {

using lime::kstatus;
using lime::tensor_type;
using lime::cpu::dequantize_row;
using lime::cpu::quantize_row;

std::vector<uint8_t> quant(tensor_type t, const std::vector<float>& x) {
  std::vector<uint8_t> q(lime::tensor_row_bytes(t, static_cast<int64_t>(x.size())), 0xcd);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size())), kstatus::ok);
  return q;
}

std::vector<float> dequant(tensor_type t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n, -999.f);
  EXPECT_EQ(dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(n)), kstatus::ok);
  return y;
}

// Gaussian rows, each block-aligned chunk of 256 with its own scale, from 1e-4 (fp16 scales deep in the
// subnormal range) over 0.02 (typical weights; q6_k and q8_0 scales are subnormal there too) to 1000; a few
// spikes make outliers.
std::vector<float> test_data(size_t n, uint32_t seed) {
  static const float k_scales[8] = {1e-4f, 1e-3f, 0.02f, 0.1f, 1.f, 10.f, 100.f, 1000.f};
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    const float scale = k_scales[(i / 256) % 8];
    x[i] = g(rng) * scale;
    if (i % 97 == 13) x[i] *= 4.f;
  }
  return x;
}

// RMS of (y - x) over RMS of x, per chunk of 256 (chunks differ in scale); returns the worst chunk.
double worst_rel_rms(const std::vector<float>& x, const std::vector<float>& y) {
  double worst = 0;
  for (size_t c = 0; c < x.size(); c += 256) {
    double se = 0, sx = 0;
    for (size_t i = c; i < c + 256; ++i) {
      se += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
      sx += static_cast<double>(x[i]) * x[i];
    }
    worst = std::max(worst, std::sqrt(se / sx));
  }
  return worst;
}

struct rt_case {
  tensor_type t;
  bool fixed_point;  // quantize(dequantize(quantize(x))) == quantize(x), byte for byte
};

const rt_case k_cases[] = {
    {tensor_type::f32, true},   {tensor_type::f16, true},   {tensor_type::bf16, true},  {tensor_type::q8_0, true},
    {tensor_type::q4_0, true},  {tensor_type::q5_0, true},  {tensor_type::q4_1, true},  {tensor_type::q5_1, true},
    {tensor_type::q4_k, false}, {tensor_type::q5_k, false}, {tensor_type::q6_k, true},
};

bool is_plain(tensor_type t) { return t == tensor_type::f32 || t == tensor_type::f16 || t == tensor_type::bf16; }

// Bounds. f32 is exact; f16/bf16 round each element with relative error <= 2^-11 / 2^-8 (unit roundoff), so
// their relative RMS error is below that. The quantized types must come within 15% of the RMS error of a plain
// uniform quantizer with the format's step (worst_step_ratio): our legacy quantizers are exactly that (ratio
// about 1.03-1.05 here, the excess from outliers clamped at a range end); the K-quant searches gain a little
// and lose a little to the 6-bit/8-bit scale rounding (about 0.91-0.98). A wrong rounding or an off-by-one
// level shows up as a ratio of 1.4 or more.
using lime::test::k_max_step_ratio;

TEST(QuantRoundTrip, ErrorWithinBound) {
  const std::vector<float> x = test_data(256 * 32, 7);
  for (const rt_case& c : k_cases) {
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const std::vector<float> y = dequant(c.t, quant(c.t, x), x.size());
    const double e = worst_rel_rms(x, y);
    const double r = is_plain(c.t) ? 0.0 : lime::test::worst_step_ratio(c.t, x, y);
    std::printf("  %-5s worst-chunk relative RMS error %.5f, RMS error / plain-step RMS error %.3f\n",
                lime::tensor_type_name(c.t), e, r);
    if (c.t == tensor_type::f32) {
      EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * 4), 0);
    }
    if (c.t == tensor_type::f16) {
      EXPECT_LE(e, std::ldexp(1.0, -11));
    }
    if (c.t == tensor_type::bf16) {
      EXPECT_LE(e, std::ldexp(1.0, -8));
    }
    if (!is_plain(c.t)) {
      EXPECT_LE(r, k_max_step_ratio);
    }
  }
}

TEST(QuantRoundTrip, FixedPointTypesRequantizeToTheSameBytes) {
  const std::vector<float> x = test_data(256 * 32, 11);
  for (const rt_case& c : k_cases) {
    if (!c.fixed_point) continue;
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const std::vector<uint8_t> q1 = quant(c.t, x);
    const std::vector<uint8_t> q2 = quant(c.t, dequant(c.t, q1, x.size()));
    ASSERT_EQ(q1.size(), q2.size());
    size_t diff = 0;
    while (diff < q1.size() && q1[diff] == q2[diff]) ++diff;
    EXPECT_EQ(diff, q1.size()) << "first differing byte " << diff;
  }
}

// q4_k/q5_k are not fixed points (the 6-bit scale and min rounding moves each sub-block's quant range), but
// requantizing their output must stay as close as a first quantization.
TEST(QuantRoundTrip, KType1RequantizationStaysClose) {
  const std::vector<float> x = test_data(256 * 32, 13);
  for (const rt_case& c : k_cases) {
    if (c.fixed_point) continue;
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const std::vector<float> y1 = dequant(c.t, quant(c.t, x), x.size());
    const std::vector<float> y2 = dequant(c.t, quant(c.t, y1), x.size());
    EXPECT_LE(lime::test::worst_step_ratio(c.t, y1, y2), k_max_step_ratio);
  }
}

// Per-element bounds where the format gives one; d, m read from the block bytes with the test's own decoder.
TEST(QuantRoundTrip, Q8_0ErrorAtMostHalfStep) {
  const std::vector<float> x = test_data(256 * 32, 17);
  const std::vector<uint8_t> q = quant(tensor_type::q8_0, x);
  const std::vector<float> y = dequant(tensor_type::q8_0, q, x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = lime::test::ref_half(lime::test::rd16(&q[(i / 32) * 34]));
    ASSERT_LE(std::fabs(static_cast<double>(y[i]) - x[i]), d / 2 * (1 + 1e-5)) << i;
  }
}

TEST(QuantRoundTrip, LegacyErrorsWithinOneStep) {
  const std::vector<float> x = test_data(256 * 32, 19);
  struct legacy {
    tensor_type t;
    int bytes;
    bool has_min;
  };
  for (const legacy& c : {legacy{tensor_type::q4_0, 18, false}, legacy{tensor_type::q5_0, 22, false},
                          legacy{tensor_type::q4_1, 20, true}, legacy{tensor_type::q5_1, 24, true}}) {
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const std::vector<uint8_t> q = quant(c.t, x);
    const std::vector<float> y = dequant(c.t, q, x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const uint8_t* blk = &q[(i / 32) * c.bytes];
      const double d = std::fabs(lime::test::ref_half(lime::test::rd16(blk)));
      const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
      if (c.has_min) {
        // Half a step, plus the fp16 rounding of the stored min and scale (2^-11 relative each).
        const double m = std::fabs(lime::test::ref_half(lime::test::rd16(blk + 2)));
        ASSERT_LE(err, d / 2 + (m + 32 * d) * std::ldexp(1.0, -11)) << i;
      } else {
        // The largest magnitude maps to the -half level; the opposite sign may clamp one step short (plus
        // the fp16 rounding of d, 2^-11 relative, times the 8 or 16 steps to the end of the range).
        ASSERT_LE(err, d * (1 + 16 * std::ldexp(1.0, -11))) << i;
      }
    }
  }
}

TEST(QuantRoundTrip, F16AndBf16AreCorrectlyRounded) {
  const std::vector<float> x = test_data(256 * 4, 23);
  const std::vector<uint8_t> h = quant(tensor_type::f16, x);
  const std::vector<uint8_t> b = quant(tensor_type::bf16, x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(lime::test::rd16(&h[2 * i]), lime::cpu::fp32_to_fp16(x[i]));
    EXPECT_EQ(lime::test::rd16(&b[2 * i]), lime::cpu::fp32_to_bf16(x[i]));
  }
}

TEST(QuantRoundTrip, DeterministicAndBlocksIndependent) {
  const std::vector<float> x = test_data(256 * 8, 29);
  for (const rt_case& c : k_cases) {
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const std::vector<uint8_t> whole = quant(c.t, x);
    EXPECT_EQ(whole, quant(c.t, x));
    // Quantizing the second half on its own gives the second half of the row's bytes.
    const std::vector<float> tail(x.begin() + static_cast<long>(x.size() / 2), x.end());
    const std::vector<uint8_t> part = quant(c.t, tail);
    EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + static_cast<long>(whole.size() / 2)));
  }
}

TEST(QuantRoundTrip, ZeroAndConstantBlocks) {
  for (const rt_case& c : k_cases) {
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const std::vector<float> zeros(512, 0.f);
    const std::vector<float> y0 = dequant(c.t, quant(c.t, zeros), zeros.size());
    for (float v : y0) ASSERT_EQ(v, 0.f);
    // A constant block: types with an offset (q4_1, q5_1) store it in fp16; the others come within 1%.
    const std::vector<float> cst(512, -0.7f);
    const std::vector<float> yc = dequant(c.t, quant(c.t, cst), cst.size());
    for (float v : yc) ASSERT_NEAR(v, -0.7f, 0.007f);
  }
}

TEST(QuantRoundTrip, NonFiniteInputsDoNotCrash) {
  std::vector<float> x = test_data(512, 31);
  x[3] = NAN;
  x[40] = INFINITY;
  x[300] = -INFINITY;
  for (const rt_case& c : k_cases) {
    std::vector<uint8_t> q(lime::tensor_row_bytes(c.t, 512));
    std::vector<float> y(512);
    EXPECT_EQ(quantize_row(c.t, x.data(), q.data(), 512), kstatus::ok);
    EXPECT_EQ(dequantize_row(c.t, q.data(), y.data(), 512), kstatus::ok);
  }
}

}  // namespace
