// The small CUDA ops against their CPU references, bit for bit: rmsnorm, softmax, rope, swiglu (hence silu_f32 and
// exp_f32 on the device), add, kv_store (f32/f16), get_rows for every computable type.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/cpu/get_rows.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/swiglu.h"
#include "tests/cuda/cuda_test_util.h"

namespace lime::cuda::test {
namespace {

constexpr float k_inf = std::numeric_limits<float>::infinity();

TEST(CudaOps, DeviceCountIsStable) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  EXPECT_EQ(device_count(), device_count());
  EXPECT_GT(device_count(), 0);
}

TEST(CudaOps, RmsnormBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 10;
  for (int64_t n : {1, 5, 16, 17, 100, 768, 4096}) {
    for (int64_t rows : {1, 3, 13}) {
      for (bool with_w : {true, false}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " rows=" + std::to_string(rows) + (with_w ? " w" : ""));
        const std::vector<float> x = random_normal(static_cast<size_t>(n * rows), seed++, 3.0f);
        const std::vector<float> w = random_normal(static_cast<size_t>(n), seed++);
        std::vector<float> want(x.size());
        for (int64_t r = 0; r < rows; ++r) cpu::rmsnorm_ref(&x[r * n], with_w ? w.data() : nullptr, &want[r * n], n, 1e-5f);
        dev_buffer dx = to_device(x), dw = to_device(w), dy(x.size() * sizeof(float));
        ASSERT_TRUE(ok_synced(rmsnorm(dx.as<float>(), with_w ? dw.as<float>() : nullptr, dy.as<float>(), rows, n, 1e-5f,
                                      nullptr)));
        EXPECT_TRUE(same_bits(from_device<float>(dy, x.size()).data(), want.data(), want.size()));
        // In place (x and y alias).
        ASSERT_TRUE(ok_synced(rmsnorm(dx.as<float>(), with_w ? dw.as<float>() : nullptr, dx.as<float>(), rows, n, 1e-5f,
                                      nullptr)));
        EXPECT_TRUE(same_bits(from_device<float>(dx, x.size()).data(), want.data(), want.size()));
      }
    }
  }
}

TEST(CudaOps, SoftmaxBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 20;
  for (int64_t n : {1, 2, 15, 16, 17, 1000, 32000, 128256}) {
    for (float spread : {1.0f, 30.0f}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " spread=" + std::to_string(spread));
      const int64_t rows = 3;
      std::vector<float> x = random_normal(static_cast<size_t>(n * rows), seed++, spread);
      if (n > 2) {
        x[1] = -k_inf;  // masked entries
        x[static_cast<size_t>(n + 2)] = -k_inf;
        x[static_cast<size_t>(2 * n)] = 0.0f;
      }
      std::vector<float> want = x;
      for (int64_t r = 0; r < rows; ++r) cpu::softmax_ref(&want[r * n], n);
      dev_buffer dx = to_device(x);
      ASSERT_TRUE(ok_synced(softmax(dx.as<float>(), rows, n, nullptr)));
      EXPECT_TRUE(same_bits(from_device<float>(dx, x.size()).data(), want.data(), want.size()));
    }
  }
}

TEST(CudaOps, RopeBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 30;
  struct geo { int32_t n_head, head_dim, n_rot; double base; };
  for (const geo& g : {geo{4, 64, 64, 10000.0}, geo{3, 128, 128, 500000.0}, geo{2, 80, 32, 10000.0}}) {
    for (bool neox : {false, true}) {
      SCOPED_TRACE("head_dim=" + std::to_string(g.head_dim) + " n_rot=" + std::to_string(g.n_rot) +
                   (neox ? " neox" : ""));
      const int64_t n_tok = 6;
      std::vector<int32_t> pos = {0, 1, 17, 255, 4097, 131071};
      std::vector<double> inv_freq(static_cast<size_t>(g.n_rot / 2));
      cpu::rope_inv_freq(inv_freq.data(), g.n_rot, g.base, 1.0, nullptr);
      const int64_t per_tok = static_cast<int64_t>(g.n_head) * g.head_dim;
      const std::vector<float> x = random_normal(static_cast<size_t>(n_tok * per_tok), seed++);
      std::vector<float> want = x;
      for (int64_t t = 0; t < n_tok; ++t)
        cpu::rope_ref(&want[t * per_tok], g.n_head, g.head_dim, g.n_rot, pos[t], inv_freq.data(), neox);
      std::vector<float> cs(static_cast<size_t>(n_tok * g.n_rot));
      cpu::rope_cos_sin(pos.data(), n_tok, g.n_rot, inv_freq.data(), cs.data());
      dev_buffer dx = to_device(x), dcs = to_device(cs);
      ASSERT_TRUE(ok_synced(rope(dx.as<float>(), dcs.as<float>(), n_tok, g.n_head, g.head_dim, g.n_rot, neox, nullptr)));
      EXPECT_TRUE(same_bits(from_device<float>(dx, x.size()).data(), want.data(), want.size()));
    }
  }
  EXPECT_EQ(rope(nullptr, nullptr, 1, 1, 8, 10, false, nullptr).k, kstatus::bad_shape);  // n_rot > head_dim
  EXPECT_EQ(rope(nullptr, nullptr, 1, 1, 8, 3, false, nullptr).k, kstatus::bad_shape);   // odd n_rot
}

// silu_f32 (and exp_f32 inside it) over the whole interesting range plus special values, via swiglu with up = 1
// and with random up; out aliasing gate.
TEST(CudaOps, SwigluBitwiseOverTheRange) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  std::vector<float> gate;
  for (float v = -120.0f; v <= 120.0f; v += 0.00731f) gate.push_back(v);
  for (float v : {0.0f, -0.0f, k_inf, -k_inf, 1e-40f, -1e-40f, 88.72f, 88.73f, 89.0f, 89.01f, -103.9f, -104.0f,
                  -104.1f, 3.4e38f, -3.4e38f, 1e-7f, -1e-7f})
    gate.push_back(v);
  const std::vector<float> rnd = random_normal(gate.size(), 40, 5.0f);
  for (bool unit_up : {true, false}) {
    std::vector<float> up = unit_up ? std::vector<float>(gate.size(), 1.0f) : rnd;
    std::vector<float> want(gate.size());
    cpu::swiglu_ref(gate.data(), up.data(), want.data(), static_cast<int64_t>(gate.size()));
    if (unit_up) {
      for (size_t i = 0; i < gate.size(); ++i) ASSERT_EQ(bits_of(want[i]), bits_of(cpu::silu_f32(gate[i])));
    }
    dev_buffer dg = to_device(gate), du = to_device(up), dy(gate.size() * sizeof(float));
    const auto n = static_cast<int64_t>(gate.size());
    ASSERT_TRUE(ok_synced(swiglu(dg.as<float>(), du.as<float>(), dy.as<float>(), n, nullptr)));
    EXPECT_TRUE(same_bits(from_device<float>(dy, gate.size()).data(), want.data(), want.size()));
    ASSERT_TRUE(ok_synced(swiglu(dg.as<float>(), du.as<float>(), dg.as<float>(), n, nullptr)));  // out = gate
    EXPECT_TRUE(same_bits(from_device<float>(dg, gate.size()).data(), want.data(), want.size()));
  }
}

TEST(CudaOps, AddBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const size_t n = 100003;
  const std::vector<float> a = random_normal(n, 50, 100.0f), b = random_normal(n, 51, 0.01f);
  std::vector<float> want(n);
  for (size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
  dev_buffer da = to_device(a), db = to_device(b);
  ASSERT_TRUE(ok_synced(add(da.as<float>(), db.as<float>(), da.as<float>(), static_cast<int64_t>(n), nullptr)));
  EXPECT_TRUE(same_bits(from_device<float>(da, n).data(), want.data(), n));
}

// Rows land in scattered slots of a pool through the device pointer table; f16 rounds as cpu::fp32_to_fp16
// (ties to even, subnormals, overflow to inf, NaN payloads).
TEST(CudaOps, KvStoreBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const int64_t n_tok = 9, n_elems = 520, n_slots = 16;
  std::vector<float> src = random_normal(static_cast<size_t>(n_tok * n_elems), 60, 10.0f);
  const float specials[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e6f, -1e6f, k_inf, -k_inf,
                            std::numeric_limits<float>::quiet_NaN(), 5.96e-8f, 2.98e-8f, 2.9e-8f, 1e-10f,
                            6.1e-5f, 1.0009765625f, 1.00048828125f, 1.00146484375f};
  for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); ++i) src[i * 7] = specials[i];
  std::vector<int> slot(static_cast<size_t>(n_slots));
  std::iota(slot.begin(), slot.end(), 0);
  std::reverse(slot.begin(), slot.end());
  for (tensor_type kv : {tensor_type::f32, tensor_type::f16}) {
    SCOPED_TRACE(tensor_type_name(kv));
    const size_t es = kv == tensor_type::f32 ? 4 : 2;
    const size_t row_bytes = static_cast<size_t>(n_elems) * es;
    dev_buffer pool(row_bytes * n_slots), dsrc = to_device(src);
    ASSERT_EQ(cudaMemset(pool.as(), 0xab, pool.bytes()), cudaSuccess);
    std::vector<void*> dst(static_cast<size_t>(n_tok));
    for (int64_t t = 0; t < n_tok; ++t) dst[t] = pool.as<uint8_t>() + slot[t] * row_bytes;
    dev_buffer ddst = to_device(dst);
    ASSERT_TRUE(ok_synced(kv_store(dsrc.as<float>(), ddst.as<void* const>(), n_tok, n_elems, kv, nullptr)));
    std::vector<uint8_t> got(pool.bytes());
    pool.download(got.data(), got.size());
    for (int64_t t = 0; t < n_tok; ++t) {
      std::vector<uint8_t> want(row_bytes);
      ASSERT_EQ(cpu::quantize_row(kv, &src[t * n_elems], want.data(), n_elems), kstatus::ok);
      EXPECT_EQ(std::memcmp(got.data() + slot[t] * row_bytes, want.data(), row_bytes), 0) << "token " << t;
    }
    for (int64_t s = n_tok; s < n_slots; ++s) {  // untouched slots stay untouched
      const uint8_t* p = got.data() + slot[s] * row_bytes;
      EXPECT_TRUE(std::all_of(p, p + row_bytes, [](uint8_t b) { return b == 0xab; })) << "slot " << slot[s];
    }
  }
  EXPECT_EQ(kv_store(nullptr, nullptr, 1, 1, tensor_type::q8_0, nullptr).k, kstatus::unsupported_type);
}

TEST(CudaOps, GetRowsEveryTypeBitwise) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 70;
  for (tensor_type t : computable_types()) {
    const int32_t be = tensor_type_traits(t).block_elems;
    const std::vector<int64_t> widths = be == 1 ? std::vector<int64_t>{7, 100, 768}
                                        : be == 32 ? std::vector<int64_t>{96, 2048}
                                                   : std::vector<int64_t>{256, 768};
    for (int64_t n_embd : widths) {
      for (bool raw : {false, true}) {
        SCOPED_TRACE(std::string(tensor_type_name(t)) + " n_embd=" + std::to_string(n_embd) + (raw ? " raw" : ""));
        const int64_t n_rows = 50;
        const std::vector<uint8_t> table = make_weights(t, n_rows, n_embd, seed++, raw);
        const std::vector<int32_t> ids = {3, 0, 49, 3, -1, 17, 50, 1 << 30};  // -1, 50, 2^30: out of range
        std::vector<float> want(ids.size() * static_cast<size_t>(n_embd), 0.0f);
        for (size_t i = 0; i < ids.size(); ++i) {
          if (ids[i] < 0 || ids[i] >= n_rows) continue;  // the CUDA op writes zeros there
          ASSERT_EQ(cpu::get_rows_ref(t, table.data(), n_rows, n_embd, &ids[i], 1, &want[i * n_embd]), kstatus::ok);
        }
        dev_buffer dt = to_device(table), di = to_device(ids), dout(want.size() * sizeof(float));
        ASSERT_TRUE(ok_synced(get_rows(t, dt.as(), n_rows, n_embd, di.as<int32_t>(), static_cast<int64_t>(ids.size()),
                                       dout.as<float>(), nullptr)));
        EXPECT_TRUE(same_bits(from_device<float>(dout, want.size()).data(), want.data(), want.size()));
      }
    }
  }
}

}  // namespace
}  // namespace lime::cuda::test
