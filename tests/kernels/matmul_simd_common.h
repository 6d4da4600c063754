// Shared by the SIMD matmul tests (test_matmul_simd.cpp, test_matmul_simd_batches.cpp): the variants under test
// (real ISAs and the emulated tile shapes), the fixture, random inputs and the bitwise comparison with matmul_ref.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/x86/matmul_tile.h"
#include "tests/kernels/matmul_args_common.h"
#include "tests/kernels/vec16_emu.h"

namespace lime::cpu {
namespace {

using test::make_args;

using kernel_fn = std::function<kstatus(const matmul_args&)>;

struct variant {
  std::string name;
  kernel_fn fn;
};

// rows_for(1) is 4 in avx2: both get covered. The lane tiles: avx2 6 rows x 2 vectors x 1 panel, avx512 12 rows x
// 1 vector x 2 panels.
using emu_avx2_shape = test::vec16_emu<3, 2, 2, 2, 2, 3, 4, 6, 2>;
using emu_avx512_shape = test::vec16_emu<6, 8, 6, 4, 1, 1, 1, 12, 1, 2>;  // the zmm tile shapes of vec16_avx512
using emu_matvec_shape = test::vec16_emu<1, 4, 4, 4>;

inline kstatus emu_run(const matmul_args& a, int shape) {
  kstatus st = shape == 0   ? tile::run_float<emu_avx2_shape>(a)
               : shape == 1 ? tile::run_float<emu_avx512_shape>(a)
                            : tile::run_float<emu_matvec_shape>(a);
  if (st != kstatus::unsupported_type) return st;
  return shape == 0 ? tile::run_legacy<emu_avx2_shape>(a)
         : shape == 1 ? tile::run_legacy<emu_avx512_shape>(a)
                      : tile::run_legacy<emu_matvec_shape>(a);
}

// A variant by name: a real ISA (empty fn when this CPU or build lacks it) or the emulated body in a tile shape.
inline variant find_variant(const std::string& name) {
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (name != isa_name(i)) continue;
    if (!isa_available(i)) return {name, nullptr};
    return {name, [i](const matmul_args& a) { return matmul_with(i, a); }};
  }
  const int shape = name == "emu_avx2_shape" ? 0 : name == "emu_avx512_shape" ? 1 : 2;
  return {name, [shape](const matmul_args& a) { return emu_run(a, shape); }};
}

// Every variant a suite over this fixture runs (unavailable ones skip), and their test names.
const std::vector<std::string> k_variant_names = {"avx2", "avx512", "neon", "emu_avx2_shape", "emu_avx512_shape",
                                                  "emu_matvec_shape"};
inline std::string variant_test_name(const ::testing::TestParamInfo<std::string>& i) { return i.param; }

class matmul_simd : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    v_ = find_variant(GetParam());
    if (!v_.fn) GTEST_SKIP() << GetParam() << " is not available on this CPU/build";
  }
  variant v_;
};

const tensor_type k_types[] = {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q8_0,
                               tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1};

inline bool is_float(tensor_type t) { return tensor_type_traits(t).block_elems == 1; }

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// n_rows rows of K weights of type t, quantized from random floats.
inline std::vector<uint8_t> random_weights(tensor_type t, int64_t n_rows, int64_t k, uint32_t seed) {
  const std::vector<float> wf = random_floats(static_cast<size_t>(n_rows * k), seed, -2.f, 2.f);
  const size_t rb = tensor_row_bytes(t, k);
  std::vector<uint8_t> w(rb * static_cast<size_t>(n_rows) + 1);
  for (int64_t r = 0; r < n_rows; ++r) {
    EXPECT_EQ(quantize_row(t, &wf[static_cast<size_t>(r * k)], &w[rb * static_cast<size_t>(r)], k), kstatus::ok);
  }
  return w;
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Bitwise equal, except that any two NaNs match (the payload of a NaN from two NaN operands is not part of
// the canonical order; the reference itself leaves it to the compiler's operand order).
inline bool same(float a, float b) { return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b)); }

constexpr float k_sentinel = -12345.5f;

// Runs fn and matmul_ref on the same inputs; expects identical y (sentinels outside the row range included).
inline void expect_equal_to_ref(const variant& v, tensor_type t, const uint8_t* w, int64_t n_rows, int64_t k,
                         const float* x, int64_t n_cols, int64_t r0, int64_t r1, bool nan_equal = false) {
  // One extra element: an empty y must still be a valid pointer, and nothing may be written past the end.
  std::vector<float> want(static_cast<size_t>(n_cols * n_rows) + 1, k_sentinel), got = want;
  ASSERT_EQ(matmul_ref(make_args(t, w, n_rows, k, x, n_cols, want.data(), r0, r1)), kstatus::ok);
  ASSERT_EQ(v.fn(make_args(t, w, n_rows, k, x, n_cols, got.data(), r0, r1)), kstatus::ok);
  if (!nan_equal) {
    ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0)
        << v.name << " " << tensor_type_name(t) << " k=" << k << " n_cols=" << n_cols << " rows=[" << r0 << ","
        << r1 << ")";
    return;
  }
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(same(want[i], got[i])) << v.name << " " << tensor_type_name(t) << " k=" << k << " i=" << i
                                       << " ref=" << want[i] << " got=" << got[i];
  }
}

}  // namespace
}  // namespace lime::cpu
