// Shared by the SIMD op tests (test_ops_simd.cpp, test_ops_simd_attention.cpp): the variants under test (the
// ISA entry points, and the shared body over the scalar traits of ops_emu.h), bit comparison, special values.
// Everything is in an unnamed namespace: each test file gets its own copy, as with the ISA bodies it includes.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops_attention.h"
#include "kernels/cpu/ops_body.h"
#include "tests/kernels/ops_emu.h"
#if LIME_ARCH_X86
#include "kernels/cpu/x86/ops_x86.h"
#elif LIME_ARCH_ARM64
#include "kernels/cpu/arm/ops_neon.h"
#endif

namespace lime::cpu {
namespace {

using array_fn = void (*)(const float*, float*, int64_t);
using swiglu_fn = void (*)(const float*, const float*, float*, int64_t);
using rmsnorm_fn = void (*)(const float*, const float*, float*, int64_t, float);
using attention_fn = kstatus (*)(const attention_args&);

struct variant {
  array_fn exp = nullptr;  // nullptr: not available on this CPU/build
  array_fn silu = nullptr;
  swiglu_fn swiglu = nullptr;
  rmsnorm_fn rmsnorm = nullptr;
  attention_fn attention = nullptr;
};

using emu = test::ops_emu<8, true>;    // AVX-512's attention V blocks and lane-major scores
using emu4 = test::ops_emu<4, false>;  // AVX2's
// Room for per-chunk results: the ISA entry points' size; 600 floats, so that only some of a kv head's query heads
// (or one, or none) share a pass; and 1 float, so that every head takes the two-pass path.
float g_saved[ops::k_saved_floats];
kstatus emu_attention(const attention_args& a) { return ops::attention<emu>(a, g_saved, ops::k_saved_floats); }
kstatus emu_attention_small(const attention_args& a) { return ops::attention<emu4>(a, g_saved, 600); }
kstatus emu_attention_two_pass(const attention_args& a) { return ops::attention<emu>(a, g_saved, 1); }

variant find_variant(const std::string& name) {
  variant v;
  if (name == "emu" || name == "emu_small_saved" || name == "emu_two_pass") {
    v.exp = ops::exp_array<emu>;
    v.silu = ops::silu_array<emu>;
    v.swiglu = ops::swiglu<emu>;
    v.rmsnorm = ops::rmsnorm<emu>;
    v.attention = name == "emu" ? emu_attention : name == "emu_two_pass" ? emu_attention_two_pass : emu_attention_small;
  }
#if LIME_ARCH_X86
  if (name == "avx2" && isa_available(isa::avx2)) {
    v = {exp_f32_avx2, silu_f32_avx2, swiglu_avx2, rmsnorm_avx2, attention_avx2};
  }
  if (name == "avx512" && isa_available(isa::avx512)) {
    v = {exp_f32_avx512, silu_f32_avx512, swiglu_avx512, rmsnorm_avx512, attention_avx512};
  }
#elif LIME_ARCH_ARM64
  if (name == "neon" && isa_available(isa::neon)) {
    v = {exp_f32_neon, silu_f32_neon, swiglu_neon, rmsnorm_neon, attention_neon};
  }
#endif
  return v;
}

class variant_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    v_ = find_variant(GetParam());
    if (!v_.exp) GTEST_SKIP() << GetParam() << " is not available on this CPU/build";
  }
  // The emulated variants check the body's logic; the long sweeps are for the real ISAs.
  bool emulated() const { return GetParam().rfind("emu", 0) == 0; }
  variant v_;
};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Index of the first element whose bits differ, or -1. With any_nan, two NaNs count as equal whatever their
// payloads: where two different NaNs meet in a commutative + or *, x86 returns the first operand's, and C++ lets
// the compiler order those operands as it likes (it does so differently even between builds of the reference).
// Every other result, and every NaN/non-NaN outcome, must match bit for bit.
int64_t first_diff(const float* a, const float* b, int64_t n, bool any_nan = false) {
  for (int64_t i = 0; i < n; ++i) {
    if (bits(a[i]) == bits(b[i])) continue;
    if (any_nan && a[i] != a[i] && b[i] != b[i]) continue;
    return i;
  }
  return -1;
}

// Bits equal; NaN payloads are free only where inputs hold NaNs of several payloads (first_diff's any_nan).
#define EXPECT_SAME_RESULT(got, want, n, what) EXPECT_SAME_BITS_IF(got, want, n, what, true)
#define EXPECT_SAME_BITS_IF(got, want, n, what, any_nan)                                                          \
  do {                                                                                                            \
    const int64_t at_ = first_diff((got), (want), (n), (any_nan));                                                \
    EXPECT_EQ(at_, -1) << (what) << ": element " << at_ << " got 0x" << std::hex << bits((got)[at_ < 0 ? 0 : at_]) \
                       << " want 0x" << bits((want)[at_ < 0 ? 0 : at_]) << std::dec;                              \
  } while (0)

const float k_inf = std::numeric_limits<float>::infinity();

// Values at and around every branch and edge of exp_f32/silu_f32, plus NaNs with payloads (quiet and signaling).
std::vector<float> special_values() {
  std::vector<float> v = {0.0f, -0.0f, k_inf, -k_inf, 1.0f, -1.0f, 89.0f, -104.0f, 88.72284f, -87.33655f,
                          -103.97208f, 0.5f * 0.6931472f, -0.5f * 0.6931472f, 1e-45f, -1e-45f, 1e-40f, -1e-40f,
                          1.17549435e-38f, -1.17549435e-38f, 3.4028235e38f, -3.4028235e38f, 1e30f, -1e30f,
                          1e-8f, -1e-8f, 2.0f, 100.0f, -200.0f, 1e10f};
  for (float x : {89.0f, -104.0f, 88.72284f, -103.97208f, -87.33655f, 0.0f}) {
    v.push_back(std::nextafter(x, k_inf));
    v.push_back(std::nextafter(x, -k_inf));
  }
  for (uint32_t u : {0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0xffd54321u, 0x7f800001u, 0xff812345u, 0x7fbfffffu}) {
    v.push_back(from_bits(u));
  }
  return v;
}

// Runs fn and the scalar reference over xs in batches; returns the first mismatching input (via *bad).
template <class Scalar>
bool same_as_scalar(array_fn fn, Scalar scalar, const std::vector<float>& xs, float* bad) {
  std::vector<float> got(xs.size()), want(xs.size());
  fn(xs.data(), got.data(), static_cast<int64_t>(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) want[i] = scalar(xs[i]);
  const int64_t at = first_diff(got.data(), want.data(), static_cast<int64_t>(xs.size()));
  if (at >= 0) *bad = xs[static_cast<size_t>(at)];
  return at < 0;
}


// n random floats in [-r, r]; with `specials`, about one in eight replaced by a special value.
std::vector<float> random_vec(int64_t n, uint32_t seed, float r, bool specials) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-r, r);
  const std::vector<float> sp = special_values();
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    x = dist(rng);
    if (specials && rng() % 8 == 0) x = sp[rng() % sp.size()];
  }
  return v;
}

}  // namespace
}  // namespace lime::cpu
