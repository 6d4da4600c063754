// matmul_neon (kernels/cpu/arm) against matmul_ref: memcmp-equal outputs for every computable type, K tails,
// batch sizes, row ranges, raw random blocks and special values. Compiled to tests only on aarch64.
#if LIME_ARCH_ARM64
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "tests/kernels/matmul_args_common.h"

namespace lime::cpu {
namespace {

using test::make_args;

constexpr tensor_type k_types[] = {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q8_0,
                                   tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1,
                                   tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k};

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Offsets of the fp16 fields (d, and m/dmin where present) in one block of a quantized type.
std::vector<int> half_fields(tensor_type t) {
  switch (t) {
    case tensor_type::q4_0: case tensor_type::q5_0: case tensor_type::q8_0: return {0};
    case tensor_type::q4_1: case tensor_type::q5_1: case tensor_type::q4_k: case tensor_type::q5_k: return {0, 2};
    case tensor_type::q6_k: return {208};
    default: return {};
  }
}

// Raw random bytes for n_rows rows (every quant bit pattern, every scale byte), with the fp16 fields of
// quantized blocks (and every element of f16 rows) replaced by finite halves of moderate size.
std::vector<uint8_t> random_rows(tensor_type t, int64_t n_rows, int64_t k, uint32_t seed) {
  const tensor_type_info& info = tensor_type_traits(t);
  std::vector<uint8_t> w(tensor_row_bytes(t, k) * n_rows);
  std::mt19937 rng(seed);
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  auto finite_half = [&]() {  // sign, exponent 0..23 (subnormals included), any mantissa
    return static_cast<uint16_t>((rng() & 0x8000u) | ((rng() % 24) << 10) | (rng() & 0x3ffu));
  };
  if (t == tensor_type::f32) {
    std::vector<float> f = random_floats(static_cast<size_t>(n_rows * k), seed);
    std::memcpy(w.data(), f.data(), w.size());
  } else if (t == tensor_type::f16) {
    for (size_t i = 0; i + 1 < w.size(); i += 2) {
      const uint16_t h = finite_half();
      std::memcpy(&w[i], &h, 2);
    }
  } else if (t != tensor_type::bf16) {
    const std::vector<int> fields = half_fields(t);
    for (size_t b = 0; b < w.size(); b += static_cast<size_t>(info.block_bytes)) {
      for (int off : fields) {
        const uint16_t h = finite_half();
        std::memcpy(&w[b + off], &h, 2);
      }
    }
  } else {
    for (size_t i = 0; i + 1 < w.size(); i += 2) w[i + 1] &= 0xbf;  // bf16: exponent below 0x7f8 (no inf/NaN)
  }
  return w;
}

// Weights as lime's quantizer would store them (the realistic case).
std::vector<uint8_t> quantized_rows(tensor_type t, int64_t n_rows, int64_t k, uint32_t seed) {
  std::vector<float> f = random_floats(static_cast<size_t>(n_rows * k), seed, 0.5f);
  std::vector<uint8_t> w(tensor_row_bytes(t, k) * n_rows);
  const size_t rb = tensor_row_bytes(t, k);
  for (int64_t r = 0; r < n_rows; ++r) {
    EXPECT_EQ(quantize_row(t, f.data() + r * k, w.data() + r * rb, k), kstatus::ok);
  }
  return w;
}

// Runs both kernels on the same arguments (outputs pre-filled with the same sentinel) and compares every byte.
void expect_same(matmul_args a, const char* what) {
  const size_t n_out = static_cast<size_t>(a.n_cols * a.n_rows);
  std::vector<float> y_ref(n_out, -123.25f), y_neon(n_out, -123.25f);
  a.y = y_ref.data();
  ASSERT_EQ(matmul_ref(a), kstatus::ok) << what;
  a.y = y_neon.data();
  ASSERT_EQ(matmul_neon(a), kstatus::ok) << what;
  for (size_t i = 0; i < n_out; ++i) {
    if (std::memcmp(&y_ref[i], &y_neon[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << " type=" << tensor_type_name(a.w_type) << " k=" << a.k << " n_cols=" << a.n_cols
                    << " rows=[" << a.row_begin << "," << a.row_end << ") first difference at col "
                    << i / a.n_rows << " row " << i % a.n_rows << ": ref " << y_ref[i] << " neon " << y_neon[i];
      return;
    }
  }
}

std::vector<int64_t> k_values(tensor_type t) {
  switch (tensor_type_traits(t).block_elems) {
    case 1: return {1, 7, 15, 16, 17, 33, 100, 256, 301};
    case 32: return {32, 64, 96, 288};
    default: return {256, 512};
  }
}

TEST(matmul_neon, every_type_every_batch_size_bitwise_equal_to_ref) {
  const int64_t n_rows = 9;  // two 4-row groups and a single row
  for (tensor_type t : k_types) {
    for (int64_t k : k_values(t)) {
      const uint32_t seed = static_cast<uint32_t>(k) * 31u + static_cast<uint32_t>(t);
      const std::vector<uint8_t> raw = random_rows(t, n_rows, k, seed);
      const std::vector<uint8_t> quant = quantized_rows(t, n_rows, k, seed + 7);
      for (int64_t n_cols : {1, 7, 16, 64}) {
        const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), seed + 13);
        expect_same(make_args(t, raw.data(), n_rows, k, x.data(), n_cols, nullptr), "random blocks");
        expect_same(make_args(t, quant.data(), n_rows, k, x.data(), n_cols, nullptr), "quantized rows");
      }
    }
  }
}

TEST(matmul_neon, row_ranges_leave_other_rows_untouched) {
  const int64_t n_rows = 11, n_cols = 6;
  for (tensor_type t : k_types) {
    const int64_t k = tensor_type_traits(t).block_elems == 1 ? 37 : 256;
    const std::vector<uint8_t> w = random_rows(t, n_rows, k, 500 + static_cast<uint32_t>(t));
    const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 600);
    for (auto [b, e] : {std::pair<int64_t, int64_t>{0, 11}, {0, 0}, {3, 4}, {2, 9}, {5, 11}, {10, 11}}) {
      matmul_args a = make_args(t, w.data(), n_rows, k, x.data(), n_cols, nullptr);
      a.row_begin = b;
      a.row_end = e;
      expect_same(a, "row range");  // the sentinel outside [b, e) must survive in both
    }
  }
}

TEST(matmul_neon, unaligned_rows_and_odd_strides) {
  // Rows of 2-byte types at odd element counts start at addresses that are not 16-byte aligned.
  for (tensor_type t : {tensor_type::f16, tensor_type::bf16, tensor_type::q4_0, tensor_type::q6_k}) {
    const int64_t k = t == tensor_type::q6_k ? 256 : (tensor_type_traits(t).block_elems == 1 ? 23 : 32);
    const std::vector<uint8_t> w = random_rows(t, 5, k, 900);
    std::vector<uint8_t> shifted(w.size() + 2);
    std::memcpy(shifted.data() + 2, w.data(), w.size());
    const std::vector<float> x = random_floats(static_cast<size_t>(3 * k), 901);
    expect_same(make_args(t, shifted.data() + 2, 5, k, x.data(), 3, nullptr), "2-byte aligned rows");
  }
}

TEST(matmul_neon, masked_tail_keeps_negative_zero_lanes) {
  // Every product is a tiny negative number that rounds to -0: all 16 lanes hold -0 after the first 16
  // elements, so the sum is -0 only if the tail leaves lanes it does not own alone.
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::bf16}) {
    for (int64_t k : {16, 17, 20, 31, 32}) {
      std::vector<float> wf(static_cast<size_t>(k), t == tensor_type::f32 ? -1e-30f : -6e-8f);
      if (t == tensor_type::bf16) wf.assign(static_cast<size_t>(k), -1e-30f);
      std::vector<uint8_t> w(tensor_row_bytes(t, k));
      ASSERT_EQ(quantize_row(t, wf.data(), w.data(), k), kstatus::ok);
      const std::vector<float> x(static_cast<size_t>(k), 1e-39f);  // products far below 2^-150
      std::vector<float> y_ref(1), y_neon(1);
      ASSERT_EQ(matmul_ref(make_args(t, w.data(), 1, k, x.data(), 1, y_ref.data())), kstatus::ok);
      ASSERT_EQ(matmul_neon(make_args(t, w.data(), 1, k, x.data(), 1, y_neon.data())), kstatus::ok);
      EXPECT_TRUE(std::signbit(y_ref[0])) << "k=" << k;  // the reference itself keeps -0
      EXPECT_EQ(std::memcmp(y_ref.data(), y_neon.data(), sizeof(float)), 0) << tensor_type_name(t) << " k=" << k;
    }
  }
}

TEST(matmul_neon, special_values_match_the_reference) {
  // inf and NaN weights (f16 NaNs take the exact scalar path), subnormal activations, huge products.
  const int64_t k = 40, n_rows = 4, n_cols = 2;
  const uint16_t halves[] = {0x7c00, 0xfc00, 0x7e01, 0x7c01, 0x0001, 0x8001, 0x03ff, 0x7bff, 0x0000, 0x8000};
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::bf16}) {
    std::vector<uint8_t> w = random_rows(t, n_rows, k, 77);
    const size_t rb = tensor_row_bytes(t, k);
    for (int i = 0; i < 10; ++i) {  // row 1 element 3i, row 3 element 3i + 1
      for (auto [r, e] : {std::pair<int, int>{1, 3 * i}, {3, 3 * i + 1}}) {
        uint8_t* p = w.data() + r * rb;
        if (t == tensor_type::f16) {
          std::memcpy(p + 2 * e, &halves[i], 2);
        } else if (t == tensor_type::bf16) {
          const uint16_t b = static_cast<uint16_t>(fp32_to_bf16(fp16_to_fp32(halves[i])));
          std::memcpy(p + 2 * e, &b, 2);
        } else {
          const float f = fp16_to_fp32(halves[i]);
          std::memcpy(p + 4 * e, &f, 4);
        }
      }
    }
    std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 78);
    x[5] = 1e-40f;  // subnormal
    x[k + 7] = 3e38f;
    expect_same(make_args(t, w.data(), n_rows, k, x.data(), n_cols, nullptr), "special values");
  }
}

TEST(matmul_neon, checks_arguments_like_the_reference) {
  std::vector<uint8_t> w(tensor_row_bytes(tensor_type::q4_k, 256) * 2);
  std::vector<float> x(512), y(4);
  matmul_args a = make_args(tensor_type::q4_k, w.data(), 2, 256, x.data(), 1, y.data());
  matmul_args b = a;
  b.k = 100;  // not whole blocks
  EXPECT_EQ(matmul_neon(b), kstatus::bad_shape);
  b = a;
  b.w_type = tensor_type::q2_k;  // not computable
  EXPECT_EQ(matmul_neon(b), matmul_ref(b));
  b = a;
  b.row_end = 3;
  EXPECT_EQ(matmul_neon(b), kstatus::bad_argument);
  b = a;
  b.x = nullptr;
  EXPECT_EQ(matmul_neon(b), kstatus::bad_argument);
  b = a;
  b.n_cols = 0;  // empty batch: nothing to do
  EXPECT_EQ(matmul_neon(b), kstatus::ok);
}

}  // namespace
}  // namespace lime::cpu
#endif  // LIME_ARCH_ARM64
