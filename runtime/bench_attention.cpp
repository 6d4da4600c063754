// lime-bench kernels' attention rows: cpu::attention at a model shape's heads over an f32 paged KV cache, called as
// the forward pass calls it (prompt: runs of 16 tokens x heads, dynamic over the pool; decode: heads split).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention.h"
#include "runtime/bench.h"
#include "runtime/model_gen.h"

namespace lime {
namespace {

constexpr int32_t k_block = 32;  // positions per KV block (the session's default)
constexpr int32_t k_run = 16;    // prompt tokens per attention call (forward_pass::k_attn_run)

// A paged f32 KV cache of n_pos positions of one layer, filled with model_gen's values, and its block tables.
struct bench_kv {
  std::vector<float> k, v;  // [n_pos, n_embd_kv]; block b = rows [b * k_block, (b + 1) * k_block)
  std::vector<const void*> k_blocks, v_blocks;
  bench_kv(int32_t n_pos, int64_t row) {
    const int32_t n_blocks = (n_pos + k_block - 1) / k_block;
    k.resize(static_cast<size_t>(n_blocks) * k_block * static_cast<size_t>(row));
    v.resize(k.size());
    model_gen_values(model_gen_stream(5, "bench.k"), 0, static_cast<int64_t>(k.size()), 1.0f, 0.f, k.data());
    model_gen_values(model_gen_stream(5, "bench.v"), 0, static_cast<int64_t>(v.size()), 1.0f, 0.f, v.data());
    for (int32_t b = 0; b < n_blocks; ++b) {
      k_blocks.push_back(&k[static_cast<size_t>(b) * k_block * static_cast<size_t>(row)]);
      v_blocks.push_back(&v[static_cast<size_t>(b) * k_block * static_cast<size_t>(row)]);
    }
  }
};

cpu::attention_args base_args(const model_shape& s, const bench_kv& kv, float* scratch) {
  cpu::attention_args a{};
  a.kv_type = tensor_type::f32;
  a.k_blocks = kv.k_blocks.data();
  a.v_blocks = kv.v_blocks.data();
  a.block_size = k_block;
  a.kv_row_elems = s.n_embd_kv();
  a.n_head = s.n_head;
  a.n_head_kv = s.n_head_kv;
  a.head_dim = s.head_dim();
  a.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim()));
  a.scratch = scratch;
  return a;
}

}  // namespace

std::vector<bench_attention_row> bench_attention(const model_shape& s, thread_pool& pool, const machine_roofline& roof,
                                                 int32_t n_prompt, int32_t n_ctx, int64_t fma_iters) {
  const int64_t hd = s.head_dim(), n_q = static_cast<int64_t>(s.n_head) * hd;
  const int n_threads = pool.n_threads();
  std::vector<float> scratch(static_cast<size_t>(n_threads) * static_cast<size_t>(cpu::attention_scratch_floats(s.head_dim())));
  auto scratch_of = [&](int t) { return &scratch[static_cast<size_t>(t) * static_cast<size_t>(cpu::attention_scratch_floats(s.head_dim()))]; };
  std::vector<bench_attention_row> rows;
  const double fma = n_threads == 1 ? roof.fma_1t : roof.fma_all, bw = n_threads == 1 ? roof.bw_1t : roof.bw_all;

  {  // prompt: every token t attends positions [0, t]; items (run, head) over the pool as the forward pass splits them
    const bench_kv kv(n_prompt, s.n_embd_kv());
    std::vector<float> q(static_cast<size_t>(n_prompt) * static_cast<size_t>(n_q)), out(q.size());
    model_gen_values(model_gen_stream(5, "bench.q"), 0, static_cast<int64_t>(q.size()), 1.0f, 0.f, q.data());
    const int64_t n_runs = (n_prompt + k_run - 1) / k_run, n_items = n_runs * s.n_head;
    // q.k and the weighted sum of V: 2 flops per head dim each, per visible (token, position) pair and head.
    const double pairs = static_cast<double>(n_prompt) * (n_prompt + 1) / 2;
    const double gflop = 4.0 * static_cast<double>(hd) * s.n_head * pairs * 1e-9;
    std::function<double()> probe;
    if (fma_iters > 0) probe = [&] { return bench_fma_probe(pool, roof.isa, fma_iters); };
    double paired = -1;
    const double dt = bench_paired_runs([&] {
      pool.parallel_for_dynamic(n_items, std::max<int64_t>(1, n_items / (4 * n_threads)), [&](int64_t b, int64_t e, int t) {
        for (int64_t item = b; item < e;) {  // the heads of one run in one call (a GQA group shares K/V reads)
          const int32_t run = static_cast<int32_t>(item / s.n_head), h0 = static_cast<int32_t>(item % s.n_head);
          const int32_t h1 = static_cast<int32_t>(std::min<int64_t>(s.n_head, h0 + (e - item)));
          cpu::attention_args a = base_args(s, kv, scratch_of(t));
          a.q = &q[static_cast<size_t>(run) * k_run * static_cast<size_t>(n_q)];
          a.out = &out[static_cast<size_t>(run) * k_run * static_cast<size_t>(n_q)];
          a.n_pos = run * k_run + 1;
          a.n_query = std::min(k_run, n_prompt - run * k_run);
          a.head_begin = h0;
          a.head_end = h1;
          cpu::attention(a);
          item += h1 - h0;
        }
      });
    }, probe, gflop, 0.3, &paired);
    bench_attention_row r;
    r.op = "attention pp" + std::to_string(n_prompt);
    r.threads = n_threads;
    r.ms = dt * 1e3;
    r.gflops = gflop / dt;
    r.gbs = 0;  // compute bound: K and V come from cache
    r.fma_pct = 100.0 * r.gflops / fma;
    r.fma_paired = paired < 0 ? -1.0 : 100.0 * paired;
    r.roof_pct = r.fma_pct;  // compute bound
    rows.push_back(r);
  }
  {  // decode: one token at n_ctx positions, heads split over the pool; reads all of K and V once
    const bench_kv kv(n_ctx, s.n_embd_kv());
    std::vector<float> q(static_cast<size_t>(n_q)), out(q.size());
    model_gen_values(model_gen_stream(5, "bench.q1"), 0, n_q, 1.0f, 0.f, q.data());
    const double dt = bench_paired_runs([&] {
      pool.parallel_for(s.n_head, [&](int64_t b, int64_t e, int t) {
        cpu::attention_args a = base_args(s, kv, scratch_of(t));
        a.q = q.data();
        a.out = out.data();
        a.n_pos = n_ctx;
        a.head_begin = static_cast<int32_t>(b);
        a.head_end = static_cast<int32_t>(e);
        cpu::attention(a);
      });
    }, nullptr, 0.0, 0.3, nullptr);  // bandwidth bound: no FMA pairing
    const double bytes = 2.0 * n_ctx * static_cast<double>(s.n_embd_kv()) * sizeof(float);
    bench_attention_row r;
    r.op = "attention tg@" + std::to_string(n_ctx);
    r.threads = n_threads;
    r.ms = dt * 1e3;
    r.gbs = bytes / dt * 1e-9;
    r.gflops = 4.0 * static_cast<double>(hd) * s.n_head * n_ctx / dt * 1e-9;
    r.roof_pct = 100.0 * r.gbs / bw;
    r.fma_pct = 100.0 * r.gflops / fma;
    rows.push_back(r);
  }
  return rows;
}

}  // namespace lime
