// fp16/bf16 conversions: exhaustive over all 65536 patterns, every rounding boundary, and named edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/quants.h"
#include "tests/kernels/test_quants_ref.h"

namespace {

using lime::cpu::bf16_to_fp32;
using lime::cpu::fp16_to_fp32;
using lime::cpu::fp32_to_bf16;
using lime::cpu::fp32_to_fp16;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bool half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0; }

TEST(Fp16, DecodeMatchesLdexpReferenceForAllPatterns) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = fp16_to_fp32(h);
    const double ref = lime::test::ref_half(h);
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      // The payload and sign survive: the top 10 fp32 mantissa bits are the half's.
      EXPECT_EQ((bits(f) >> 13) & 0x3ff, h & 0x3ffu) << std::hex << h;
      EXPECT_EQ(bits(f) >> 31, static_cast<uint32_t>(h >> 15)) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), ref) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    }
  }
}

TEST(Fp16, RoundTripIsIdentityExceptNanStaysNan) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const uint16_t back = fp32_to_fp16(fp16_to_fp32(h));
    if (half_is_nan(h)) {
      EXPECT_TRUE(half_is_nan(back)) << std::hex << h;
      EXPECT_EQ(back, h | 0x0200) << std::hex << h;  // quieted, sign and payload kept
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// Between every pair of adjacent finite halves a < b: the midpoint goes to the even one, and the floats
// just below/above it go to a/b. Covers every subnormal and normal rounding boundary of both signs.
TEST(Fp16, EveryRoundingBoundaryTiesToEven) {
  for (uint16_t sign : {uint16_t{0}, uint16_t{0x8000}}) {
    for (uint16_t a = 0; a < 0x7bff; ++a) {
      const uint16_t b = static_cast<uint16_t>(a + 1);
      const float fa = fp16_to_fp32(static_cast<uint16_t>(a | sign));
      const float fb = fp16_to_fp32(static_cast<uint16_t>(b | sign));
      const float mid = (fa + fb) / 2;  // exact: 12 significant bits
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(fa) + fb) / 2);
      const uint16_t even = (a & 1) ? b : a;
      ASSERT_EQ(fp32_to_fp16(mid), even | sign) << std::hex << a;
      const float toward_a = std::nextafter(mid, fa), toward_b = std::nextafter(mid, fb);
      ASSERT_EQ(fp32_to_fp16(toward_a), a | sign) << std::hex << a;
      ASSERT_EQ(fp32_to_fp16(toward_b), b | sign) << std::hex << a;
    }
  }
}

TEST(Fp16, NamedCases) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie, 0x3c00 even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, 0x3c01 odd -> up
  EXPECT_EQ(fp32_to_fp16(0.1f), 0x2e66);
  // Subnormals.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
  EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(3 * std::ldexp(1.0f, -25)), 0x0002);  // 1.5 units -> 2
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -25)), 0x8000);     // keeps the sign of zero
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.0f, -24)), 0x03ff);   // largest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);   // rounds up into the smallest normal
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  // Overflow.
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // the tie goes to even, which is inf
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  // NaN: signalling input comes back quiet; payload top bits and sign kept.
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7f800001u)), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0xffc00000u)), 0xfe00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7fa02000u)), 0x7e01 | 0x0100);
  EXPECT_TRUE(half_is_nan(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN())));
}

#if defined(__FLT16_MANT_DIG__) && (defined(__x86_64__) || (defined(__aarch64__) && (defined(__clang__) || __GNUC__ >= 13)))
// (GCC accepts _Float16 in C++ on aarch64 only from version 13.)
// The compiler's _Float16 conversion (IEEE round to nearest even) as an oracle on random floats of all magnitudes.
TEST(Fp16, MatchesCompilerFloat16OnRandomFloats) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000000; ++i) {
    const float f = from_bits(static_cast<uint32_t>(rng()));
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t hb;
    std::memcpy(&hb, &h, 2);
    const uint16_t got = fp32_to_fp16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(half_is_nan(got));
    } else {
      ASSERT_EQ(got, hb) << std::hex << bits(f);
    }
  }
}
#endif

TEST(Bf16, DecodeAndRoundTripAllPatterns) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = bf16_to_fp32(h);
    ASSERT_EQ(bits(f), i << 16);
    const uint16_t back = fp32_to_bf16(f);
    if (bf16_is_nan(h)) {
      EXPECT_TRUE(bf16_is_nan(back)) << std::hex << h;
      EXPECT_EQ(back, h | 0x0040) << std::hex << h;  // quieted, sign and payload kept
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(Bf16, EveryRoundingBoundaryTiesToEven) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t a = 0; a < 0x7f7f; ++a) {
      const uint32_t mid = (a << 16) | 0x8000u;  // halfway between bf16 a and a + 1
      const uint32_t even = (a & 1) ? a + 1 : a;
      ASSERT_EQ(fp32_to_bf16(from_bits(mid | (sign << 16))), even | sign) << std::hex << a;
      ASSERT_EQ(fp32_to_bf16(from_bits((mid - 1) | (sign << 16))), a | sign) << std::hex << a;
      ASSERT_EQ(fp32_to_bf16(from_bits((mid + 1) | (sign << 16))), (a + 1) | sign) << std::hex << a;
    }
  }
}

TEST(Bf16, NamedCases) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00008000u)), 0x0000);  // subnormal tie
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00018000u)), 0x0002);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // overflow to inf
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001u)), 0x7fc0);  // signalling NaN whose payload is below bf16 -> quiet
  EXPECT_EQ(fp32_to_bf16(from_bits(0xff800001u)), 0xffc0);
  EXPECT_FLOAT_EQ(bf16_to_fp32(0x4049), 3.140625f);
}

}  // namespace
