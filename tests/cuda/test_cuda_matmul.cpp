// cuda::matmul against cpu::matmul_ref, bit for bit, for every computable type at small, odd and real shapes;
// batch invariance (one x row at n_cols 1, 7, 64 and every column-group width); output into a wider matrix
// (y_stride); cuda::matmul_fast (cuBLAS) within a stated tolerance; argument checks.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "tests/cuda/cuda_test_util.h"

namespace lime::cuda::test {
namespace {

// y[n_cols, rows] on the GPU for weights w (host bytes) and x (host floats).
std::vector<float> gpu_matmul(tensor_type t, const std::vector<uint8_t>& w, int64_t rows, int64_t k,
                              const std::vector<float>& x, int64_t n_cols) {
  dev_buffer dw = to_device(w), dx = to_device(x), dy(static_cast<size_t>(rows * n_cols) * sizeof(float));
  matmul_args a{t, dw.as(), rows, k, dx.as<float>(), n_cols, dy.as<float>()};
  EXPECT_TRUE(ok_synced(matmul(a, nullptr))) << tensor_type_name(t) << " " << rows << "x" << k << " cols " << n_cols;
  return from_device<float>(dy, static_cast<size_t>(rows * n_cols));
}

// The spec for small shapes; cpu::matmul (bitwise equal to it, tested in test_kernels) for the big ones.
std::vector<float> cpu_matmul(tensor_type t, const std::vector<uint8_t>& w, int64_t rows, int64_t k,
                              const std::vector<float>& x, int64_t n_cols, bool fast = false) {
  std::vector<float> y(static_cast<size_t>(rows * n_cols));
  cpu::matmul_args a{t, w.data(), rows, k, x.data(), n_cols, y.data(), 0, rows};
  EXPECT_EQ(fast ? cpu::matmul(a) : cpu::matmul_ref(a), kstatus::ok);
  return y;
}

void check_matmul(tensor_type t, int64_t rows, int64_t k, int64_t n_cols, uint32_t seed, bool raw, bool fast = false) {
  SCOPED_TRACE(std::string(tensor_type_name(t)) + " rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
               " cols=" + std::to_string(n_cols) + (raw ? " raw" : ""));
  const std::vector<uint8_t> w = make_weights(t, rows, k, seed, raw);
  const std::vector<float> x = random_normal(static_cast<size_t>(n_cols * k), seed + 7);
  const std::vector<float> want = cpu_matmul(t, w, rows, k, x, n_cols, fast);
  const std::vector<float> got = gpu_matmul(t, w, rows, k, x, n_cols);
  EXPECT_TRUE(same_bits(got.data(), want.data(), want.size()));
}

// K values per type: not a multiple of 16 where the type allows, 32 * odd for legacy quants, several super-blocks.
std::vector<int64_t> ks_for(tensor_type t) {
  const int32_t be = tensor_type_traits(t).block_elems;
  if (be == 1) return {1, 7, 16, 17, 100, 256, 300, 1000};
  if (be == 32) return {32, 96, 160, 288, 800, 1024};
  return {256, 512, 768, 1280};
}

TEST(CudaMatmul, EveryTypeSmallShapesBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 1;
  for (tensor_type t : computable_types()) {
    for (int64_t k : ks_for(t)) {
      for (int64_t n_cols : {1, 2, 3, 5, 9, 17}) {
        check_matmul(t, 37, k, n_cols, seed++, false);
        check_matmul(t, 13, k, n_cols, seed++, true);
      }
    }
  }
}

TEST(CudaMatmul, RealShapesBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 1000;
  for (tensor_type t : computable_types()) {
    check_matmul(t, 2048, 768, 1, seed++, false, true);   // stories110M ffn_up
    check_matmul(t, 768, 2048, 3, seed++, false, true);   // stories110M ffn_down
    check_matmul(t, 8192, 2048, 1, seed++, false, true);  // Llama-3.2-1B ffn_up
    check_matmul(t, 2048, 8192, 2, seed++, true, true);   // Llama-3.2-1B ffn_down
  }
}

// Products that underflow to -0 in every lane (k >= 16): the canonical sum is -0. A padded tail would turn the lanes
// past k % 16 into fma(0, 0, -0) = +0 and the sum into +0; masking keeps it.
TEST(CudaMatmul, TailLanesAreMaskedNotPadded) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  for (int64_t k : {17, 35, 47}) {
    std::vector<float> wf(static_cast<size_t>(k), -1e-30f), x(static_cast<size_t>(k), 1e-30f);
    std::vector<uint8_t> w(wf.size() * 4);
    std::memcpy(w.data(), wf.data(), w.size());
    const std::vector<float> want = cpu_matmul(tensor_type::f32, w, 1, k, x, 1);
    ASSERT_EQ(bits_of(want[0]), 0x80000000u) << "the CPU sum should be -0 for k=" << k;
    const std::vector<float> got = gpu_matmul(tensor_type::f32, w, 1, k, x, 1);
    EXPECT_TRUE(same_bits(got.data(), want.data(), 1)) << "k=" << k;
  }
}

// The same x row gives the same y bits whatever the batch around it (and whichever column-group width runs it).
TEST(CudaMatmul, BatchInvariant) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const int64_t rows = 45;
  uint32_t seed = 2000;
  for (tensor_type t : computable_types()) {
    SCOPED_TRACE(tensor_type_name(t));
    const int64_t k = 512;
    const std::vector<uint8_t> w = make_weights(t, rows, k, seed++, false);
    const std::vector<float> row = random_normal(static_cast<size_t>(k), seed++);
    const std::vector<float> want = cpu_matmul(t, w, rows, k, row, 1);
    for (int64_t n_cols : {1, 2, 4, 7, 8, 16, 33, 64}) {
      const int64_t at = (n_cols * 5) / 7;  // somewhere inside the batch
      std::vector<float> x = random_normal(static_cast<size_t>(n_cols * k), seed++);
      std::copy(row.begin(), row.end(), x.begin() + at * k);
      const std::vector<float> y = gpu_matmul(t, w, rows, k, x, n_cols);
      EXPECT_TRUE(same_bits(y.data() + at * rows, want.data(), static_cast<size_t>(rows))) << "n_cols=" << n_cols;
    }
  }
}

// y_stride > n_rows writes a block of rows into a wider matrix (the output head's blocks into the logits): every
// column's rows land at c * y_stride + r with the packed result's bits, and nothing between them is touched. Both
// the canonical kernel and matmul_fast (whose values are checked by CloseToReferenceEveryType).
TEST(CudaMatmul, StridedOutputFillsOnlyItsRows) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  const uint32_t poison = 0x7fa5a5a5u;  // a NaN no kernel writes
  uint32_t seed = 2500;
  for (tensor_type t : {tensor_type::f32, tensor_type::q8_0, tensor_type::q4_k}) {
    for (int64_t n_cols : {1, 5, 20}) {
      SCOPED_TRACE(std::string(tensor_type_name(t)) + " cols=" + std::to_string(n_cols));
      const int64_t rows = 40, k = 512, stride = rows + 24;
      const std::vector<uint8_t> w = make_weights(t, rows, k, seed++, false);
      const std::vector<float> x = random_normal(static_cast<size_t>(n_cols * k), seed++);
      const std::vector<float> packed = gpu_matmul(t, w, rows, k, x, n_cols);
      for (bool fast : {false, true}) {
        std::vector<uint32_t> init(static_cast<size_t>(n_cols * stride), poison);
        dev_buffer dw = to_device(w), dx = to_device(x), dy = to_device(init);
        matmul_args a{t, dw.as(), rows, k, dx.as<float>(), n_cols, dy.as<float>(), stride};
        std::vector<float> want = packed;
        if (fast) {
          const size_t scratch_bytes = matmul_fast_scratch_bytes(k, n_cols, 64);
          dev_buffer scratch(scratch_bytes), dp(packed.size() * sizeof(float));
          matmul_args p = a;
          p.y = dp.as<float>();
          p.y_stride = 0;
          ASSERT_TRUE(ok_synced(matmul_fast(p, handle, scratch.as(), scratch_bytes, nullptr)));
          want = from_device<float>(dp, packed.size());
          ASSERT_TRUE(ok_synced(matmul_fast(a, handle, scratch.as(), scratch_bytes, nullptr)));
        } else {
          ASSERT_TRUE(ok_synced(matmul(a, nullptr)));
        }
        const std::vector<float> got = from_device<float>(dy, init.size());
        for (int64_t c = 0; c < n_cols; ++c) {
          EXPECT_TRUE(same_bits(got.data() + c * stride, want.data() + c * rows, static_cast<size_t>(rows)))
              << "column " << c << (fast ? " (matmul_fast)" : "");
          for (int64_t r = rows; r < stride; ++r)
            ASSERT_EQ(bits_of(got[static_cast<size_t>(c * stride + r)]), poison)
                << "wrote between columns at " << c << ", " << r << (fast ? " (matmul_fast)" : "");
        }
      }
    }
  }
  cublasDestroy(handle);
}

TEST(CudaMatmul, ArgumentChecks) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  dev_buffer w(4096), x(4096), y(4096);
  matmul_args a{tensor_type::q2_k, w.as(), 1, 256, x.as<float>(), 1, y.as<float>()};
  EXPECT_EQ(matmul(a, nullptr).k, kstatus::unsupported_type);
  a.w_type = tensor_type::q4_0;
  a.k = 48;
  EXPECT_EQ(matmul(a, nullptr).k, kstatus::bad_shape);
  a.k = 64;
  a.w = w.as<uint8_t>() + 1;  // blocks must be 2-byte aligned
  EXPECT_EQ(matmul(a, nullptr).k, kstatus::bad_argument);
  a.w = w.as();
  a.x = nullptr;
  EXPECT_EQ(matmul(a, nullptr).k, kstatus::bad_argument);
  a.x = x.as<float>();
  a.n_rows = -1;
  EXPECT_EQ(matmul(a, nullptr).k, kstatus::bad_shape);
  a.n_rows = 4;
  a.y_stride = 3;  // narrower than a column
  EXPECT_EQ(matmul(a, nullptr).k, kstatus::bad_shape);
  a.y_stride = 0;
  a.n_rows = 0;  // nothing to do
  EXPECT_TRUE(ok(matmul(a, nullptr)));
}

// matmul_fast rounds x and W to fp16 and lets cuBLAS order the fp32 sums. Stated tolerance, per output:
//   |y - y_ref| <= 2e-3 * sum_k |w_k x_k| + 1e-6 * k
// (fp16 rounding is 2^-11 relative per factor, ~1e-3 per product; the k term covers fp16 subnormals).
TEST(CudaMatmulFast, CloseToReferenceEveryType) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  uint32_t seed = 3000;
  for (tensor_type t : computable_types()) {
    const int64_t k = tensor_type_traits(t).block_elems == 1 ? 300 : 512;
    for (int64_t n_cols : {1, 33, 128}) {
      SCOPED_TRACE(std::string(tensor_type_name(t)) + " cols=" + std::to_string(n_cols));
      const int64_t rows = 300;  // tiles of 64 rows: five of them, the last one short
      const std::vector<uint8_t> w = make_weights(t, rows, k, seed++, false);
      const std::vector<float> x = random_normal(static_cast<size_t>(n_cols * k), seed++);
      const std::vector<float> want = cpu_matmul(t, w, rows, k, x, n_cols);
      std::vector<float> wf(static_cast<size_t>(rows * k));
      const size_t row_bytes = tensor_row_bytes(t, k);
      for (int64_t r = 0; r < rows; ++r) cpu::dequantize_row(t, w.data() + r * row_bytes, wf.data() + r * k, k);

      dev_buffer dw = to_device(w), dx = to_device(x), dy(want.size() * sizeof(float));
      const size_t scratch_bytes = matmul_fast_scratch_bytes(k, n_cols, 64);
      dev_buffer scratch(scratch_bytes);
      matmul_args a{t, dw.as(), rows, k, dx.as<float>(), n_cols, dy.as<float>()};
      ASSERT_TRUE(ok_synced(matmul_fast(a, handle, scratch.as(), scratch_bytes, nullptr)));
      const std::vector<float> got = from_device<float>(dy, want.size());
      double max_abs = 0, max_rel = 0;
      for (int64_t c = 0; c < n_cols; ++c) {
        for (int64_t r = 0; r < rows; ++r) {
          double mag = 0;
          for (int64_t i = 0; i < k; ++i) mag += std::fabs(static_cast<double>(wf[r * k + i]) * x[c * k + i]);
          const double d = std::fabs(static_cast<double>(got[c * rows + r]) - want[c * rows + r]);
          max_abs = std::fmax(max_abs, d);
          max_rel = std::fmax(max_rel, d / std::fmax(mag, 1e-30));
          ASSERT_LE(d, 2e-3 * mag + 1e-6 * static_cast<double>(k)) << "r=" << r << " c=" << c;
        }
      }
      RecordProperty(std::string("max_rel_") + tensor_type_name(t) + "_" + std::to_string(n_cols),
                     std::to_string(max_rel));
      EXPECT_GT(max_abs, 0.0);  // fp16 rounding must show somewhere: the fast path really is a different path
    }
  }
  // Scratch too small for one row besides x.
  dev_buffer w(1024), x(1024), y(1024), scratch(256);
  matmul_args a{tensor_type::f32, w.as(), 4, 64, x.as<float>(), 1, y.as<float>()};
  EXPECT_EQ(matmul_fast(a, handle, scratch.as(), 256, nullptr).k, kstatus::bad_argument);
  cublasDestroy(handle);
}

}  // namespace
}  // namespace lime::cuda::test
