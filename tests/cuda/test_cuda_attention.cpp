// cuda::attention against cpu::attention_ref, bit for bit: context lengths around the 256-position chunk boundary
// and long ones (up to 8192), GQA and MHA, f32 and f16 KV, paged blocks in scattered order, padded KV rows, head
// dims that are not multiples of 16; invalid n_pos gives NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "tests/cuda/cuda_test_util.h"

namespace lime::cuda::test {
namespace {

struct attn_case {
  int32_t n_head, n_head_kv, head_dim, block_size;
  tensor_type kv;
  std::vector<int32_t> n_pos;  // one query token per entry, all over the same sequence
  int64_t row_pad = 0;         // kv_row_elems = n_head_kv * head_dim + row_pad
  float q_scale = 1.0f;        // larger: peakier softmax, more exp underflow
};

std::string describe(const attn_case& c) {
  std::string s = "heads " + std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + " hd " +
                  std::to_string(c.head_dim) + " bs " + std::to_string(c.block_size) + " " + tensor_type_name(c.kv) +
                  " n_pos";
  for (int32_t p : c.n_pos) s += " " + std::to_string(p);
  return s;
}

void check_attention(const attn_case& c, uint32_t seed) {
  SCOPED_TRACE(describe(c));
  const int32_t max_pos = *std::max_element(c.n_pos.begin(), c.n_pos.end());
  const int32_t n_blocks = (max_pos - 1) / c.block_size + 1;
  const int32_t pool_blocks = n_blocks + 3;  // spare blocks never referenced
  const int64_t row_elems = static_cast<int64_t>(c.n_head_kv) * c.head_dim + c.row_pad;
  const size_t es = c.kv == tensor_type::f32 ? 4 : 2;
  const size_t block_bytes = static_cast<size_t>(c.block_size) * static_cast<size_t>(row_elems) * es;

  // Pools of K and V blocks; the sequence's block b lives in pool slot perm[b].
  std::mt19937 rng(seed);
  std::vector<int32_t> perm(static_cast<size_t>(pool_blocks));
  for (int32_t i = 0; i < pool_blocks; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<uint8_t> k_pool(block_bytes * pool_blocks), v_pool(block_bytes * pool_blocks);
  const int64_t pool_elems = static_cast<int64_t>(pool_blocks) * c.block_size * row_elems;
  const std::vector<float> kf = random_normal(static_cast<size_t>(pool_elems), seed + 1);
  const std::vector<float> vf = random_normal(static_cast<size_t>(pool_elems), seed + 2);
  ASSERT_EQ(cpu::quantize_row(c.kv, kf.data(), k_pool.data(), pool_elems), kstatus::ok);
  ASSERT_EQ(cpu::quantize_row(c.kv, vf.data(), v_pool.data(), pool_elems), kstatus::ok);

  const int64_t n_tok = static_cast<int64_t>(c.n_pos.size());
  const int64_t q_per_tok = static_cast<int64_t>(c.n_head) * c.head_dim;
  const std::vector<float> q = random_normal(static_cast<size_t>(n_tok * q_per_tok), seed + 3, c.q_scale);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  // CPU reference per token.
  std::vector<const void*> k_tab(static_cast<size_t>(n_blocks)), v_tab(static_cast<size_t>(n_blocks));
  for (int32_t b = 0; b < n_blocks; ++b) {
    k_tab[b] = k_pool.data() + perm[b] * block_bytes;
    v_tab[b] = v_pool.data() + perm[b] * block_bytes;
  }
  std::vector<float> want(static_cast<size_t>(n_tok * q_per_tok));
  std::vector<float> scratch(static_cast<size_t>(cpu::attention_scratch_floats(c.head_dim)));
  for (int64_t t = 0; t < n_tok; ++t) {
    cpu::attention_args a;
    a.q = &q[t * q_per_tok];
    a.kv_type = c.kv;
    a.k_blocks = k_tab.data();
    a.v_blocks = v_tab.data();
    a.block_size = c.block_size;
    a.kv_row_elems = row_elems;
    a.n_head = c.n_head;
    a.n_head_kv = c.n_head_kv;
    a.head_dim = c.head_dim;
    a.n_pos = c.n_pos[t];
    a.scale = scale;
    a.out = &want[t * q_per_tok];
    a.scratch = scratch.data();
    ASSERT_EQ(cpu::attention_ref(a), kstatus::ok);
  }

  // Device: the pools, per-token tables [n_tok, n_blocks] of device pointers, n_pos.
  dev_buffer dk = to_device(k_pool), dv = to_device(v_pool), dq = to_device(q);
  std::vector<const void*> dk_tab, dv_tab;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int32_t b = 0; b < n_blocks; ++b) {
      dk_tab.push_back(dk.as<uint8_t>() + perm[b] * block_bytes);
      dv_tab.push_back(dv.as<uint8_t>() + perm[b] * block_bytes);
    }
  }
  dev_buffer dkt = to_device(dk_tab), dvt = to_device(dv_tab), dpos = to_device(c.n_pos);
  dev_buffer dout(want.size() * sizeof(float));
  attention_args a;
  a.q = dq.as<float>();
  a.kv_type = c.kv;
  a.k_blocks = dkt.as<const void* const>();
  a.v_blocks = dvt.as<const void* const>();
  a.max_blocks = n_blocks;
  a.n_pos = dpos.as<int32_t>();
  a.block_size = c.block_size;
  a.kv_row_elems = row_elems;
  a.n_head = c.n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = c.head_dim;
  a.n_tok = n_tok;
  a.scale = scale;
  a.out = dout.as<float>();
  ASSERT_TRUE(ok_synced(attention(a, nullptr)));
  EXPECT_TRUE(same_bits(from_device<float>(dout, want.size()).data(), want.data(), want.size()));
}

TEST(CudaAttention, ChunkBoundariesGqaF32) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  check_attention({8, 2, 64, 16, tensor_type::f32, {1, 255, 256, 257, 1000}}, 1);
}

TEST(CudaAttention, ChunkBoundariesGqaF16) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  check_attention({8, 2, 64, 16, tensor_type::f16, {1, 255, 256, 257, 1000}}, 2);
}

TEST(CudaAttention, MhaAndOddGeometry) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  check_attention({4, 4, 128, 32, tensor_type::f32, {513, 2, 768}}, 3);
  check_attention({6, 3, 80, 7, tensor_type::f16, {300, 17, 1}, 5}, 4);  // head_dim % 16 != 0, padded rows
  check_attention({2, 1, 256, 64, tensor_type::f32, {700}}, 5);          // largest head_dim
  check_attention({4, 1, 24, 3, tensor_type::f32, {5, 260}, 0, 8.0f}, 6);  // peaky scores
}

TEST(CudaAttention, LongContext) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  check_attention({4, 2, 128, 256, tensor_type::f16, {8192, 4097}}, 7);
  check_attention({2, 2, 64, 16, tensor_type::f32, {8192}, 0, 4.0f}, 8);
}

TEST(CudaAttention, InvalidNPosGivesNan) {
  if (lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const int32_t hd = 32, bs = 16;
  dev_buffer k(static_cast<size_t>(bs * hd) * 4), v(static_cast<size_t>(bs * hd) * 4), out(2 * hd * 4);
  ASSERT_EQ(cudaMemset(k.as(), 0, k.bytes()), cudaSuccess);
  ASSERT_EQ(cudaMemset(v.as(), 0, v.bytes()), cudaSuccess);
  const std::vector<const void*> kt = {k.as(), k.as()}, vt = {v.as(), v.as()};
  const std::vector<int32_t> n_pos = {0, bs + 1};  // empty, and past the one-block table
  dev_buffer dkt = to_device(kt), dvt = to_device(vt), dpos = to_device(n_pos);
  dev_buffer q2(2 * hd * 4);
  ASSERT_EQ(cudaMemset(q2.as(), 0, q2.bytes()), cudaSuccess);
  attention_args a;
  a.q = q2.as<float>();
  a.kv_type = tensor_type::f32;
  a.k_blocks = dkt.as<const void* const>();
  a.v_blocks = dvt.as<const void* const>();
  a.max_blocks = 1;
  a.n_pos = dpos.as<int32_t>();
  a.block_size = bs;
  a.kv_row_elems = hd;
  a.n_head = 1;
  a.n_head_kv = 1;
  a.head_dim = hd;
  a.n_tok = 2;
  a.scale = 1.0f;
  a.out = out.as<float>();
  ASSERT_TRUE(ok_synced(attention(a, nullptr)));
  for (float f : from_device<float>(out, 2 * hd)) EXPECT_TRUE(std::isnan(f));
  a.head_dim = 257;
  a.kv_row_elems = 257;
  EXPECT_EQ(attention(a, nullptr).k, kstatus::bad_shape);
}

}  // namespace
}  // namespace lime::cuda::test
