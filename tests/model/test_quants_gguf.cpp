// Quantization on real tensors: the f16 tensors of llama-2-tiny-random decode exactly (and re-encode to the
// same bytes), and stories260K's trained f32 weights survive every quantized format within the unit bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/quants.h"
#include "runtime/gguf.h"
#include "tests/kernels/test_quants_ref.h"
#include "tests/test_models.h"

namespace {

using lime::kstatus;
using lime::tensor_type;

TEST(QuantGguf, F16TensorsDecodeExactlyAndReencodeToTheSameBytes) {
  LIME_REQUIRE_MODELS(models);
  auto file = lime::gguf_file::open(models + "/llama-2-tiny-random.gguf");
  ASSERT_TRUE(file.ok());
  int n_f16 = 0;
  for (const lime::gguf_tensor_info& t : file->tensors()) {
    if (t.type != tensor_type::f16) continue;
    SCOPED_TRACE(t.name);
    ++n_f16;
    const int64_t n = t.n_elements();
    const uint8_t* data = file->tensor_data(t);
    std::vector<float> y(static_cast<size_t>(n));
    ASSERT_EQ(lime::cpu::dequantize_row(tensor_type::f16, data, y.data(), n), kstatus::ok);
    for (int64_t i = 0; i < n; ++i) {
      const double want = lime::test::ref_half(lime::test::rd16(data + 2 * i));
      ASSERT_FALSE(std::isnan(want)) << i;
      ASSERT_EQ(static_cast<double>(y[static_cast<size_t>(i)]), want) << i;
    }
    std::vector<uint8_t> back(static_cast<size_t>(n) * 2);
    ASSERT_EQ(lime::cpu::quantize_row(tensor_type::f16, y.data(), back.data(), n), kstatus::ok);
    EXPECT_EQ(std::memcmp(back.data(), data, back.size()), 0);
  }
  EXPECT_GT(n_f16, 0);
}

// Every format on every trained weight matrix of stories260K (flattened: the quantizers treat a tensor as one
// long row): error over the whole tensor within the unit tests' bound relative to a plain uniform quantizer
// (lime::test::worst_step_ratio), and byte-exact requantization for the fixed-point formats. Real weights are small (fp16
// scales of q8_0 and q6_k are subnormal here) and heavier-tailed than the unit tests' Gaussian data.
TEST(QuantGguf, TrainedWeightsRoundTrip) {
  LIME_REQUIRE_MODELS(models);
  auto file = lime::gguf_file::open(models + "/stories260K.gguf");
  ASSERT_TRUE(file.ok());
  struct fmt {
    tensor_type t;
    bool fixed_point;
  };
  const fmt fmts[] = {{tensor_type::q8_0, true}, {tensor_type::q4_0, true},  {tensor_type::q5_0, true},
                      {tensor_type::q4_1, true}, {tensor_type::q5_1, true},  {tensor_type::q4_k, false},
                      {tensor_type::q5_k, false}, {tensor_type::q6_k, true}};
  int n_tensors = 0;
  double worst[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (const lime::gguf_tensor_info& t : file->tensors()) {
    if (t.type != tensor_type::f32 || t.n_dims != 2 || t.n_elements() % 256 != 0) continue;
    ++n_tensors;
    const int64_t n = t.n_elements();
    std::vector<float> x(static_cast<size_t>(n));
    std::memcpy(x.data(), file->tensor_data(t), x.size() * sizeof(float));
    for (size_t k = 0; k < 8; ++k) {
      const fmt& f = fmts[k];
      SCOPED_TRACE(t.name + " " + lime::tensor_type_name(f.t));
      std::vector<uint8_t> q(lime::tensor_row_bytes(f.t, n)), q2(q.size());
      std::vector<float> y(x.size());
      ASSERT_EQ(lime::cpu::quantize_row(f.t, x.data(), q.data(), n), kstatus::ok);
      ASSERT_EQ(lime::cpu::dequantize_row(f.t, q.data(), y.data(), n), kstatus::ok);
      const double r = lime::test::worst_step_ratio(f.t, x, y, x.size());  // whole tensor
      worst[k] = std::max(worst[k], r);
      EXPECT_LE(r, lime::test::k_max_step_ratio);
      if (f.fixed_point) {
        ASSERT_EQ(lime::cpu::quantize_row(f.t, y.data(), q2.data(), n), kstatus::ok);
        EXPECT_EQ(q, q2);
      }
    }
  }
  EXPECT_GT(n_tensors, 5);
  for (size_t k = 0; k < 8; ++k) {
    std::printf("  %-5s worst tensor RMS error / plain-step RMS error %.3f\n", lime::tensor_type_name(fmts[k].t), worst[k]);
  }
}

}  // namespace
