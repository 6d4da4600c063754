// matmul_ref and get_rows_ref: accuracy vs double, the exact canonical reduction order, batch/row-split
// invariance, argument checks, and every computable weight type against its own dequantized fp32 values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/get_rows.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "tests/kernels/matmul_args_common.h"

namespace lime::cpu {
namespace {

using test::make_args;

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

// Independent statement of the canonical order: 16 lanes, lane k%16 gets one fma per element, then
// pairwise halving (lane l += lane l+8, then +4, +2, +1).
float canonical_dot_test(const float* w, const float* x, int64_t k) {
  float lane[16];
  for (float& l : lane) l = 0.0f;
  for (int64_t i = 0; i < k; ++i) lane[i % 16] = std::fma(w[i], x[i], lane[i % 16]);
  for (int i = 0; i < 8; ++i) lane[i] = lane[i] + lane[i + 8];
  for (int i = 0; i < 4; ++i) lane[i] = lane[i] + lane[i + 4];
  for (int i = 0; i < 2; ++i) lane[i] = lane[i] + lane[i + 2];
  return lane[0] + lane[1];
}

TEST(matmul_ref, f32_close_to_double_and_exactly_canonical) {
  for (int64_t k : {1, 7, 16, 17, 172, 256, 300, 1000}) {
    const int64_t n_rows = 13, n_cols = 5;
    std::vector<float> w = random_floats(n_rows * k, 100 + static_cast<uint32_t>(k));
    std::vector<float> x = random_floats(n_cols * k, 200 + static_cast<uint32_t>(k));
    std::vector<float> y(n_cols * n_rows, -7.f);
    ASSERT_EQ(matmul_ref(make_args(tensor_type::f32, w.data(), n_rows, k, x.data(), n_cols, y.data())),
              kstatus::ok);
    for (int64_t c = 0; c < n_cols; ++c) {
      for (int64_t r = 0; r < n_rows; ++r) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < k; ++i) {
          ref += static_cast<double>(w[r * k + i]) * x[c * k + i];
          mag += std::fabs(static_cast<double>(w[r * k + i]) * x[c * k + i]);
        }
        // Error bound of the canonical order: k/16 fmas per lane, 4 fold levels.
        const double tol = (static_cast<double>(k) / 16 + 6) * 0x1p-24 * mag;
        const float got = y[c * n_rows + r];
        EXPECT_NEAR(got, ref, tol) << "k=" << k << " r=" << r << " c=" << c;
        EXPECT_EQ(bits(got), bits(canonical_dot_test(&w[r * k], &x[c * k], k))) << "k=" << k;
      }
    }
  }
}

TEST(matmul_ref, batch_and_row_split_invariant) {
  const int64_t n_rows = 40, k = 172;
  std::vector<float> w = random_floats(n_rows * k, 1);
  std::vector<float> probe = random_floats(k, 2);
  // Reference: the probe row alone (matvec).
  std::vector<float> y1(n_rows);
  ASSERT_EQ(matmul_ref(make_args(tensor_type::f32, w.data(), n_rows, k, probe.data(), 1, y1.data())), kstatus::ok);
  for (int64_t n_cols : {7, 64}) {
    std::vector<float> x = random_floats(n_cols * k, 3 + static_cast<uint32_t>(n_cols), -4.f, 4.f);
    const int64_t at = n_cols - 2;  // the probe sits among other columns
    std::memcpy(&x[at * k], probe.data(), k * sizeof(float));
    std::vector<float> y(n_cols * n_rows);
    ASSERT_EQ(matmul_ref(make_args(tensor_type::f32, w.data(), n_rows, k, x.data(), n_cols, y.data())),
              kstatus::ok);
    for (int64_t r = 0; r < n_rows; ++r) EXPECT_EQ(bits(y[at * n_rows + r]), bits(y1[r])) << n_cols << " " << r;
    // Same batch with rows split in uneven ranges (as threads would): identical bits, other rows untouched.
    std::vector<float> ys(n_cols * n_rows, std::nanf(""));
    const int64_t cuts[] = {0, 1, 9, 10, 33, n_rows};
    for (int i = 0; i + 1 < 6; ++i) {
      matmul_args a = make_args(tensor_type::f32, w.data(), n_rows, k, x.data(), n_cols, ys.data());
      a.row_begin = cuts[i];
      a.row_end = cuts[i + 1];
      ASSERT_EQ(matmul_ref(a), kstatus::ok);
      for (int64_t r = cuts[i + 1]; r < n_rows; ++r) ASSERT_TRUE(std::isnan(ys[r])) << "row " << r << " written";
    }
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(bits(ys[i]), bits(y[i])) << i;
  }
}

TEST(matmul_ref, empty_shapes) {
  std::vector<float> w = random_floats(4 * 8, 5), x = random_floats(8, 6);
  std::vector<float> y(4, -1.f);
  matmul_args a = make_args(tensor_type::f32, w.data(), 4, 8, x.data(), 1, y.data());
  a.row_begin = a.row_end = 2;  // empty range: nothing written
  EXPECT_EQ(matmul_ref(a), kstatus::ok);
  for (float v : y) EXPECT_EQ(v, -1.f);
  a = make_args(tensor_type::f32, w.data(), 4, 0, x.data(), 1, y.data());  // k = 0: sums of nothing are +0
  EXPECT_EQ(matmul_ref(a), kstatus::ok);
  for (float v : y) EXPECT_EQ(bits(v), 0u);
}

TEST(matmul_ref, rejects_bad_arguments) {
  std::vector<float> w(4 * 64, 0.5f), x(64, 1.f), y(4);
  const matmul_args good = make_args(tensor_type::f32, w.data(), 4, 64, x.data(), 1, y.data());
  EXPECT_EQ(matmul_ref(good), kstatus::ok);
  matmul_args a = good;
  a.w = nullptr;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_argument);
  a = good;
  a.x = nullptr;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_argument);
  a = good;
  a.y = nullptr;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_argument);
  a = good;
  a.row_end = 5;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_argument);
  a = good;
  a.row_begin = -1;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_argument);
  a = good;
  a.row_begin = 3;
  a.row_end = 2;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_argument);
  a = good;
  a.n_rows = -1;
  a.row_end = 0;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_shape);
  a = good;
  a.n_cols = -3;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_shape);
  a = good;  // 48 is not a multiple of q4_0's 32-element block
  a.w_type = tensor_type::q4_0;
  a.k = 48;
  EXPECT_EQ(matmul_ref(a), kstatus::bad_shape);
  a = good;  // q2_k has no kernel in lime
  a.w_type = tensor_type::q2_k;
  a.k = 256;
  EXPECT_EQ(matmul_ref(a), kstatus::unsupported_type);
  a = good;
  a.w_type = tensor_type::i32;
  EXPECT_EQ(matmul_ref(a), kstatus::unsupported_type);
}

// For each computable type: quantize random weights, dequantize them whole, and check that matmul_ref gives the
// same bits as matmul_ref on those fp32 values (the weights' exact values), for batch 1 and 9.
TEST(matmul_ref, every_type_equals_f32_on_dequantized_weights) {
  float probe_out[32];
  std::vector<uint8_t> probe_in(tensor_row_bytes(tensor_type::q8_0, 32));
  if (dequantize_row(tensor_type::q8_0, probe_in.data(), probe_out, 32) == kstatus::unsupported_type) {
    GTEST_SKIP() << "dequantize_row not available yet (kernels/cpu/quants.cpp)";
  }
  int tested = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    const tensor_type_info* info = tensor_type_lookup(id);
    if (!info || !info->computable) continue;
    const tensor_type t = static_cast<tensor_type>(id);
    for (int64_t k : {256, 512, 768}) {
      if (k % info->block_elems != 0) continue;
      const int64_t n_rows = 6;
      std::vector<float> wf = random_floats(n_rows * k, 300 + id, -2.f, 2.f);
      const size_t row_bytes = tensor_row_bytes(t, k);
      std::vector<uint8_t> wq(n_rows * row_bytes);
      std::vector<float> wd(n_rows * k);
      for (int64_t r = 0; r < n_rows; ++r) {
        ASSERT_EQ(quantize_row(t, &wf[r * k], &wq[r * row_bytes], k), kstatus::ok) << info->name;
        ASSERT_EQ(dequantize_row(t, &wq[r * row_bytes], &wd[r * k], k), kstatus::ok) << info->name;
      }
      for (int64_t n_cols : {1, 9}) {
        std::vector<float> x = random_floats(n_cols * k, 400 + id);
        std::vector<float> yq(n_cols * n_rows), yd(n_cols * n_rows);
        ASSERT_EQ(matmul_ref(make_args(t, wq.data(), n_rows, k, x.data(), n_cols, yq.data())), kstatus::ok);
        ASSERT_EQ(matmul_ref(make_args(tensor_type::f32, wd.data(), n_rows, k, x.data(), n_cols, yd.data())),
                  kstatus::ok);
        for (size_t i = 0; i < yq.size(); ++i) ASSERT_EQ(bits(yq[i]), bits(yd[i])) << info->name << " k=" << k;
      }
      ++tested;
    }
  }
  EXPECT_GE(tested, 10);
}

TEST(get_rows_ref, f32_rows_and_bad_ids) {
  const int64_t n_rows = 10, n_embd = 12;
  std::vector<float> table = random_floats(n_rows * n_embd, 9);
  const int32_t ids[] = {3, 0, 9, 3};
  std::vector<float> out(4 * n_embd);
  ASSERT_EQ(get_rows_ref(tensor_type::f32, table.data(), n_rows, n_embd, ids, 4, out.data()), kstatus::ok);
  for (int i = 0; i < 4; ++i) {
    for (int64_t d = 0; d < n_embd; ++d) EXPECT_EQ(bits(out[i * n_embd + d]), bits(table[ids[i] * n_embd + d]));
  }
  const int32_t bad_hi[] = {1, 10};
  const int32_t bad_lo[] = {-1};
  EXPECT_EQ(get_rows_ref(tensor_type::f32, table.data(), n_rows, n_embd, bad_hi, 2, out.data()),
            kstatus::bad_argument);
  EXPECT_EQ(get_rows_ref(tensor_type::f32, table.data(), n_rows, n_embd, bad_lo, 1, out.data()),
            kstatus::bad_argument);
  EXPECT_EQ(get_rows_ref(tensor_type::f32, nullptr, n_rows, n_embd, ids, 1, out.data()), kstatus::bad_argument);
  EXPECT_EQ(get_rows_ref(tensor_type::q4_0, table.data(), n_rows, 12, ids, 1, out.data()), kstatus::bad_shape);
  EXPECT_EQ(get_rows_ref(tensor_type::q2_k, table.data(), n_rows, 256, ids, 1, out.data()),
            kstatus::unsupported_type);
}

TEST(get_rows_ref, every_type_equals_dequantize_row) {
  float probe_out[32];
  std::vector<uint8_t> probe_in(tensor_row_bytes(tensor_type::q8_0, 32));
  if (dequantize_row(tensor_type::q8_0, probe_in.data(), probe_out, 32) == kstatus::unsupported_type) {
    GTEST_SKIP() << "dequantize_row not available yet (kernels/cpu/quants.cpp)";
  }
  for (uint32_t id = 1; id < 64; ++id) {
    const tensor_type_info* info = tensor_type_lookup(id);
    if (!info || !info->computable) continue;
    const tensor_type t = static_cast<tensor_type>(id);
    const int64_t n_rows = 5, n_embd = 512;
    const size_t row_bytes = tensor_row_bytes(t, n_embd);
    std::vector<float> tf = random_floats(n_rows * n_embd, 500 + id);
    std::vector<uint8_t> tq(n_rows * row_bytes);
    for (int64_t r = 0; r < n_rows; ++r) {
      ASSERT_EQ(quantize_row(t, &tf[r * n_embd], &tq[r * row_bytes], n_embd), kstatus::ok) << info->name;
    }
    const int32_t ids[] = {4, 1, 1};
    std::vector<float> out(3 * n_embd), want(n_embd);
    ASSERT_EQ(get_rows_ref(t, tq.data(), n_rows, n_embd, ids, 3, out.data()), kstatus::ok) << info->name;
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(dequantize_row(t, &tq[ids[i] * row_bytes], want.data(), n_embd), kstatus::ok);
      for (int64_t d = 0; d < n_embd; ++d) ASSERT_EQ(bits(out[i * n_embd + d]), bits(want[d])) << info->name;
    }
  }
}

}  // namespace
}  // namespace lime::cpu
