// Forward pass over a layer range with the reference kernels; work is split across the thread pool by output
// rows (matmul) and by tokens (attention), which never changes a row's bits.
#include "runtime/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/get_rows.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"

namespace lime {

forward_pass::forward_pass(const model& m, layer_range range, kv_cache& kv, thread_pool& pool, weight_source* weights)
    : model_(&m), range_(range), kv_(&kv), pool_(&pool), weights_(weights) {
  const int n_threads = pool.n_threads();
  attn_scratch_.resize(static_cast<size_t>(n_threads) * static_cast<size_t>(cpu::attention_scratch_floats(m.hparams().head_dim)));
  k_tables_.resize(static_cast<size_t>(n_threads));
  v_tables_.resize(static_cast<size_t>(n_threads));
}

namespace {
// Below this many multiply-adds a matmul runs on the calling thread: waking the pool costs more than the work
// (tiny models). Where rows are split never changes a bit, so this is purely a speed choice.
constexpr int64_t k_min_parallel_macs = 1 << 18;
// Attention goes to the pool from far less work than a matmul: at short contexts its K and V come from L3 on one
// core. stories110M Q4_0 decode at 2 threads (ctx 1-129): attention 333-335 -> 258-274 us a token (hand-timed).
constexpr int64_t k_min_parallel_attn_macs = 1 << 14;
// Batches of this many tokens or more split the per-token work between matmuls (norms, rope, KV stores, SwiGLU,
// residual adds) across the pool; smaller ones (decode) run it on the calling thread.
constexpr size_t k_min_parallel_tokens = 32;

// Rows per chunk of a parallel matmul, in multiples of 24 rows (the SIMD kernels' row strips), handed out first
// come, first served.
// - Decode (fewer than 32 columns): one chunk per thread, at least 48 rows. Each matvec call restarts its row
//   streams, whose first requests then wait on memory (the matvecs ask for their rows a few KiB ahead;
//   matvec_x86.h). A thread that is late to start still leaves its chunk to whoever is free. Zen 5, tg128 at 2
//   threads, 2-3 alternated runs of 3, % of the paired read roofline, 2 chunks -> 1: stories110M Q4_0 43.7-45.2 ->
//   48.1-50.1 (fast mode), Q4_K_M 79.1 -> 79.8-83.4, Q6_K 80.7-81.9 -> 84.6-87.3, Q8_0 68.6 -> 75.1-77.6 (fast), F16
//   the same; Llama-3.2-1B Q4_0 87.4-89.8 -> 90.0-93.9, Q4_K_M 84.0-85.7 -> 87.3-87.6; stories110M Q4_0 --seqs 2 /
//   4: 784-829 -> 826-882 / 1010-1062 -> 1065-1085 t/s. Before the spread prefetch 2 chunks were best (tg64: 4
//   chunks 376 (Q4_0) / 331 (Q4_K_M) t/s, 2 chunks 474 / 370, 1 chunk 453 / 298), and on a Xeon 4 beat 8 by 2-6 %
//   (8 cut a 768-row matrix into 48-row calls: 6.5-7.7 % slower on one thread).
// - Batches of 32 columns or more: one chunk per thread too, and at least 96 rows: the lane path reads each packed
//   activation panel once per block of rows, so a 96-row chunk reads them half as often as a 48-row one (768x768
//   and 768x2048 x 512 columns on a Xeon: 3-7 % faster). Each chunk's first row block is packed straight from
//   memory (the lane path requests only the next block ahead), so fewer chunks wait less. Zen 5, 2 threads,
//   alternated lime-bench pp runs (-r 5), medians, % of the paired FMA peak, 8 chunks a thread -> 1: stories110M
//   F32 pp128 58.4 -> 62.6 and 62.0 -> 63.8 (two sets of 5), pp512 67.5 -> 68.7, Q4_0 pp128 71.4 -> 72.3, Q6_K pp128
//   69.3 -> 71.0; Llama-3.2-1B Q4_0 pp128 75.0 -> 76.4. With a busy process beside it on the two cores, Q4_0 pp128
//   gave 883 t/s with one chunk and 909 with 8 (medians of 3; ranges 881-943 and 882-937): the same within the
//   noise. Chunks never repeat work: the batched kernels' packed activations are made once per input (pack_lanes).
int64_t matmul_chunk_rows(int64_t n_rows, int n_threads, size_t n_cols) {
  const int64_t want = (n_rows + n_threads - 1) / static_cast<int64_t>(n_threads);
  return std::max<int64_t>(n_cols >= 32 ? 96 : 48, (want + 23) / 24 * 24);
}

// Attention items ((run, head) pairs) per chunk of the pool: a few chunks per thread. Decode (every run one token)
// hands each thread at least n_head / T adjacent heads of a token: the kernel walks a call's heads together,
// position by position across their adjacent slices of each KV row. stories110M Q4_0 at 2 threads, tg64 after 256
// / 1024 tokens of context (2 alternated rounds of 3 runs each): 12 calls of one head 402-419 / 214-218 t/s, 2 of six
// heads 442-450 / 251-265, 4 of three heads 438-450 / 226-235.
int64_t attention_chunk_items(int64_t n_items, int32_t n_head, bool decode, int n_threads) {
  const int64_t few = std::max<int64_t>(1, n_items / (4 * n_threads));
  return decode ? std::max<int64_t>(few, (n_head + n_threads - 1) / n_threads) : few;
}
}  // namespace

int64_t forward_token_scratch_floats(const model_hparams& hp) {
  return 3 * hp.n_embd + 2 * hp.n_embd_q() + 2 * hp.n_embd_kv() + 2 * hp.n_ff + hp.n_rot;
}

uint64_t forward_matmul_scratch_bytes(const model_hparams& hp, uint64_t n_rows, int n_threads) {
  int64_t lanes = 0;  // the largest of the matmul inputs (normed x, attention output, gated FFN)
  uint64_t thread = 0;
  for (int64_t k : {hp.n_embd, hp.n_embd_q(), hp.n_ff}) {
    lanes = std::max(lanes, cpu::matmul_lanes_floats(k, static_cast<int64_t>(n_rows)));
    thread = std::max(thread, cpu::matmul_thread_buffer_bytes(k, static_cast<int64_t>(n_rows)));
  }
  return static_cast<uint64_t>(lanes) * sizeof(float) + static_cast<uint64_t>(std::max(1, n_threads)) * thread;
}

void forward_pass::matmul(const weight_view& w, const float* x, size_t n_cols, float* y) {
  matmuls({{&w, y}}, x, n_cols);
}

void forward_pass::per_token(size_t n, const std::function<void(size_t, size_t)>& fn) {
  if (n < k_min_parallel_tokens || pool_->n_threads() == 1) {
    fn(0, n);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>(n) / (4 * pool_->n_threads()));
  pool_->parallel_for_dynamic(static_cast<int64_t>(n), chunk, [&](int64_t t0, int64_t t1, int) {
    fn(static_cast<size_t>(t0), static_cast<size_t>(t1));
  });
}

const float* forward_pass::pack_lanes(const float* x, int64_t k, size_t n_cols, bool parallel) {
  const int64_t floats = cpu::matmul_lanes_floats(k, static_cast<int64_t>(n_cols));
  if (floats == 0) return nullptr;
  if (x_lanes_.size() < static_cast<size_t>(floats)) x_lanes_.resize(static_cast<size_t>(floats));
  const int64_t n_panels = (static_cast<int64_t>(n_cols) + 15) / 16;
  float* dst = x_lanes_.data();
  auto pack = [&](int64_t p0, int64_t p1, int) { cpu::matmul_pack_lanes(x, k, static_cast<int64_t>(n_cols), p0, p1, dst); };
  if (parallel) pool_->parallel_for_dynamic(n_panels, 1, pack);
  else pack(0, n_panels, 0);
  return dst;
}

void forward_pass::matmuls(std::initializer_list<matmul_out> outs, const float* x, size_t n_cols) {
  if (outs.size() > 3) {
    for (const matmul_out& o : outs) matmuls({o}, x, n_cols);
    return;
  }
  int64_t macs = 0;
  for (const matmul_out& o : outs) macs += o.w->n_rows * o.w->k * static_cast<int64_t>(n_cols);
  const bool parallel = macs >= k_min_parallel_macs && pool_->n_threads() > 1;
  // The matrices share x (and so k): pack it once for all of them and all threads (a speed choice only).
  const float* xl = pack_lanes(x, outs.begin()->w->k, n_cols, parallel);
  if (!parallel) {
    for (const matmul_out& o : outs) {
      const weight_view& w = *o.w;
      cpu::matmul_args a{w.type, w.data, w.n_rows, w.k, x, static_cast<int64_t>(n_cols), o.y, 0, w.n_rows, xl};
      cpu::matmul(a);  // the fastest variant; bitwise equal to matmul_ref. Shapes were validated at load.
    }
    return;
  }
  // One loop over the chunks of every matrix, in order: chunk j of matrix i is index first[i] + j.
  int64_t chunk[3] = {}, first[4] = {};
  const matmul_out* out[3] = {};
  int n_out = 0;
  for (const matmul_out& o : outs) {
    chunk[n_out] = matmul_chunk_rows(o.w->n_rows, pool_->n_threads(), n_cols);
    first[n_out + 1] = first[n_out] + (o.w->n_rows + chunk[n_out] - 1) / chunk[n_out];
    out[n_out++] = &o;
  }
  pool_->parallel_for_dynamic(first[n_out], 1, [&](int64_t c0, int64_t c1, int) {
    for (int64_t c = c0; c < c1; ++c) {
      int i = 0;
      while (c >= first[i + 1]) ++i;
      const weight_view& w = *out[i]->w;
      const int64_t begin = (c - first[i]) * chunk[i];
      const int64_t end = std::min(w.n_rows, begin + chunk[i]);
      cpu::matmul_args a{w.type, w.data, w.n_rows, w.k, x, static_cast<int64_t>(n_cols), out[i]->y, begin, end, xl};
      cpu::matmul(a);
    }
  });
}

result<void> forward_check_and_reserve(const model& mdl, layer_range range, kv_cache& kv, const micro_batch& b) {
  const model_hparams& hp = mdl.hparams();
  const size_t n = b.size();
  if (n == 0) return make_error(errc::invalid_argument, "forward: empty batch");
  if (b.seq.size() != n || b.want_logits.size() != n)
    return make_error(errc::invalid_argument, "forward: batch arrays differ in length");
  if (range.lo == 0) {
    if (b.tokens.size() != n) return make_error(errc::invalid_argument, "forward: batch needs one token per position");
    for (int32_t t : b.tokens) {
      if (t < 0 || t >= hp.n_vocab)
        return make_error(errc::invalid_argument, "forward: token id " + std::to_string(t) + " is outside the vocabulary");
    }
  } else if (b.embd.size() != n * static_cast<size_t>(hp.n_embd)) {
    return make_error(errc::invalid_argument, "forward: activations must be [n_tokens, n_embd]");
  }
  // Plan: the highest position per sequence; check the pool can hold all of them before reserving any.
  std::unordered_map<int32_t, int32_t> need;
  for (size_t i = 0; i < n; ++i) {
    if (b.pos[i] < 0) return make_error(errc::invalid_argument, "forward: negative position");
    int32_t& m = need[b.seq[i]];
    if (b.pos[i] + 1 > m) m = b.pos[i] + 1;
  }
  int64_t extra_blocks = 0;
  const int32_t bs = kv.config().block_size;
  for (const auto& [seq, n_pos] : need) {
    const int64_t want = (static_cast<int64_t>(n_pos) + bs - 1) / bs;
    const int64_t have = kv.capacity(seq) / bs;
    if (want > have) extra_blocks += want - have;
  }
  if (extra_blocks > kv.blocks_free())
    return make_error(errc::out_of_memory, "forward: KV cache full (" + std::to_string(extra_blocks) + " blocks needed, " +
                                               std::to_string(kv.blocks_free()) + " free)");
  for (const auto& [seq, n_pos] : need) LIME_TRY_VOID(kv.reserve(seq, n_pos));
  return {};
}

result<void> forward_pass::embed(const micro_batch& b) {
  const model_hparams& hp = model_->hparams();
  const size_t n = b.size();
  if (range_.lo == 0 && weights_) {
    LIME_TRY_VOID(weights_->embed(b.tokens.data(), static_cast<int64_t>(n), x_.data()));
  } else if (range_.lo == 0) {
    const weight_view& e = model_->tok_embd();
    cpu::get_rows_ref(e.type, e.data, e.n_rows, e.k, b.tokens.data(), static_cast<int64_t>(n), x_.data());
  } else {
    std::memcpy(x_.data(), b.embd.data(), n * static_cast<size_t>(hp.n_embd) * sizeof(float));
  }
  return {};
}

void forward_pass::rope_and_store(int32_t kv_layer, const micro_batch& b, size_t t0, size_t t1) {
  const model_hparams& hp = model_->hparams();
  const int64_t n_q = hp.n_embd_q(), n_kv = hp.n_embd_kv();
  const tensor_type kv_type = kv_->config().type;
  for (size_t i = t0; i < t1; ++i) {
    const float* cs = rope_cs_.data() + i * static_cast<size_t>(hp.n_rot);  // token i's (c, s), from run()
    cpu::rope_apply(&q_[i * n_q], hp.n_head, hp.head_dim, hp.n_rot, cs, hp.rope_neox);
    cpu::rope_apply(&k_[i * n_kv], hp.n_head_kv, hp.head_dim, hp.n_rot, cs, hp.rope_neox);
    void* kd = kv_->k_row(kv_layer, b.seq[i], b.pos[i]);
    void* vd = kv_->v_row(kv_layer, b.seq[i], b.pos[i]);
    if (kv_type == tensor_type::f32) {
      std::memcpy(kd, &k_[i * n_kv], static_cast<size_t>(n_kv) * sizeof(float));
      std::memcpy(vd, &v_[i * n_kv], static_cast<size_t>(n_kv) * sizeof(float));
    } else {
      cpu::quantize_row(tensor_type::f16, &k_[i * n_kv], kd, n_kv);
      cpu::quantize_row(tensor_type::f16, &v_[i * n_kv], vd, n_kv);
    }
  }
}

void forward_pass::norm_rows(const weight_view& norm, size_t n) {
  const model_hparams& hp = model_->hparams();
  const int64_t n_embd = hp.n_embd;
  per_token(n, [&](size_t t0, size_t t1) {
    for (size_t i = t0; i < t1; ++i)
      cpu::rmsnorm(&x_[i * n_embd], static_cast<const float*>(norm.data), &cur_[i * n_embd], n_embd, hp.rms_eps);
  });
}

void forward_pass::add_residual(size_t n) {
  const size_t n_embd = static_cast<size_t>(model_->hparams().n_embd);
  per_token(n, [&](size_t t0, size_t t1) {
    for (size_t i = t0 * n_embd; i < t1 * n_embd; ++i) x_[i] = x_[i] + proj_[i];
  });
}

void forward_pass::attention_block(int32_t layer, const layer_weights& w, const micro_batch& b) {
  const model_hparams& hp = model_->hparams();
  const size_t n = b.size();
  const int64_t n_q = hp.n_embd_q(), n_kv = hp.n_embd_kv();
  const int32_t kv_layer = layer - range_.lo;
  const tensor_type kv_type = kv_->config().type;

  // --- norm, q/k/v projections, rope
  norm_rows(w.attn_norm, n);
  matmuls({{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}}, cur_.data(), n);
  // --- rope, then store K/V of every token before any attention, so tokens later in the batch see earlier ones
  // (the KV rows were reserved by forward_check_and_reserve: looking them up changes nothing, from any thread)
  per_token(n, [&](size_t t0, size_t t1) { rope_and_store(kv_layer, b, t0, t1); });

  // --- attention per (run of tokens, head). A run is up to k_attn_run tokens of one sequence at consecutive
  // positions (a prompt's tokens): one kernel call reads each chunk of K and V once for all of them. Tokens and
  // heads are independent, so any grouping and any split gives the same bits (tested in the kernel suite).
  runs_.clear();
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && j - i < k_attn_run && b.seq[j] == b.seq[i] && b.pos[j] == b.pos[j - 1] + 1) ++j;
    runs_.push_back({i, static_cast<int32_t>(j - i)});
    i = j;
  }
  const int64_t scratch_floats = cpu::attention_scratch_floats(hp.head_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  const int64_t n_items = static_cast<int64_t>(runs_.size()) * hp.n_head;
  auto attend = [&](int64_t begin, int64_t end, int t) {
    std::vector<const void*>& kt = k_tables_[static_cast<size_t>(t)];
    std::vector<const void*>& vt = v_tables_[static_cast<size_t>(t)];
    int64_t item = begin;
    while (item < end) {
      const token_run& run = runs_[static_cast<size_t>(item / hp.n_head)];
      const int32_t h0 = static_cast<int32_t>(item % hp.n_head);
      const int32_t h1 = static_cast<int32_t>(std::min<int64_t>(hp.n_head, h0 + (end - item)));
      kv_->block_tables(kv_layer, b.seq[run.first], kt, vt);
      cpu::attention_args a;
      a.q = &q_[run.first * n_q];
      a.kv_type = kv_type;
      a.k_blocks = kt.data();
      a.v_blocks = vt.data();
      a.block_size = kv_->config().block_size;
      a.kv_row_elems = n_kv;
      a.n_head = hp.n_head;
      a.n_head_kv = hp.n_head_kv;
      a.head_dim = hp.head_dim;
      a.n_pos = b.pos[run.first] + 1;
      a.scale = scale;
      a.out = &attn_[run.first * n_q];
      a.scratch = &attn_scratch_[static_cast<size_t>(t) * static_cast<size_t>(scratch_floats)];
      a.head_begin = h0;
      a.head_end = h1;
      a.n_query = run.n;
      a.q_stride = n_q;
      a.out_stride = n_q;
      cpu::attention(a);
      item += h1 - h0;
    }
  };
  // Small attention work (the first positions, tiny heads) stays on the calling thread.
  const int64_t macs = static_cast<int64_t>(n) * hp.n_head * static_cast<int64_t>(b.pos.back() + 1) * hp.head_dim * 2;
  if (macs < k_min_parallel_attn_macs) attend(0, n_items, 0);
  else {
    const int64_t chunk = attention_chunk_items(n_items, hp.n_head, runs_.size() == n, pool_->n_threads());
    pool_->parallel_for_dynamic(n_items, chunk, attend);
  }

  // --- output projection + residual
  matmul(w.wo, attn_.data(), n, proj_.data());
  add_residual(n);
}

void forward_pass::ffn_block(const layer_weights& w, size_t n) {
  const model_hparams& hp = model_->hparams();
  const int64_t n_ff = hp.n_ff;
  norm_rows(w.ffn_norm, n);
  matmuls({{&w.w_gate, gate_.data()}, {&w.w_up, up_.data()}}, cur_.data(), n);
  per_token(n, [&](size_t t0, size_t t1) {  // elementwise: any split gives the same values
    const size_t o = t0 * static_cast<size_t>(n_ff);
    cpu::swiglu(&gate_[o], &up_[o], &gate_[o], static_cast<int64_t>(t1 - t0) * n_ff);
  });
  matmul(w.w_down, gate_.data(), n, proj_.data());
  add_residual(n);
}

result<void> forward_pass::output_head(const micro_batch& b, forward_output& out) {
  const model_hparams& hp = model_->hparams();
  const int64_t n_embd = hp.n_embd;
  const weight_view& norm = weights_ ? weights_->output_norm() : model_->output_norm();
  out.logit_rows.clear();
  for (size_t i = 0; i < b.size(); ++i) {
    if (!b.want_logits[i]) continue;
    // Compact the rows that want logits into cur_ (row r of cur_ = batch row logit_rows[r]).
    const size_t r = out.logit_rows.size();
    cpu::rmsnorm(&x_[i * n_embd], static_cast<const float*>(norm.data), &cur_[r * n_embd], n_embd, hp.rms_eps);
    out.logit_rows.push_back(static_cast<int32_t>(i));
  }
  out.logits.resize(out.logit_rows.size() * static_cast<size_t>(hp.n_vocab));
  if (out.logit_rows.empty()) return {};
  if (weights_) return output_head_streamed(out.logit_rows.size(), out.logits.data());
  matmul(model_->output(), cur_.data(), out.logit_rows.size(), out.logits.data());
  return {};
}

// The head from a weight source, block by block of output rows. y[c, r] depends only on row r of the matrix and row
// c of the input, so computing a block of rows on its own gives the same bits as the whole matrix.
result<void> forward_pass::output_head_streamed(size_t n_out, float* logits) {
  const int64_t n_vocab = model_->hparams().n_vocab;
  const int32_t n_blocks = weights_->head_blocks();
  for (int32_t blk = 0; blk < n_blocks; ++blk) {
    LIME_TRY(weight_rows rows, weights_->acquire_head(blk));
    if (blk + 1 == n_blocks) weights_->prefetch(range_.lo);  // the next pass starts there
    const int64_t nr = rows.w.n_rows;
    if (nr > 0 && n_out == 1) {
      matmul(rows.w, cur_.data(), 1, logits + rows.row0);
    } else if (nr > 0) {
      // y is [n_out, n_vocab]: a block's rows are strided, so compute them compact and scatter.
      if (head_tmp_.size() < n_out * static_cast<size_t>(nr)) head_tmp_.resize(n_out * static_cast<size_t>(nr));
      matmul(rows.w, cur_.data(), n_out, head_tmp_.data());
      for (size_t c = 0; c < n_out; ++c)
        std::memcpy(logits + c * static_cast<size_t>(n_vocab) + rows.row0, &head_tmp_[c * static_cast<size_t>(nr)],
                    static_cast<size_t>(nr) * sizeof(float));
    }
    weights_->release_head(blk);
  }
  return {};
}

result<void> forward_pass::run(const micro_batch& b, forward_output& out) {
  const model_hparams& hp = model_->hparams();
  if (range_.lo < 0 || range_.hi > hp.n_layer || range_.lo >= range_.hi)
    return make_error(errc::invalid_argument, "forward: bad layer range");
  if (weights_ && (weights_->range().lo != range_.lo || weights_->range().hi != range_.hi))
    return make_error(errc::invalid_argument, "forward: the weight source serves a different layer range");
  LIME_TRY_VOID(forward_check_and_reserve(*model_, range_, *kv_, b));
  const size_t n = b.size();
  auto grow = [n](std::vector<float>& v, int64_t per_row) {
    if (v.size() < n * static_cast<size_t>(per_row)) v.resize(n * static_cast<size_t>(per_row));
  };
  grow(x_, hp.n_embd); grow(cur_, hp.n_embd); grow(proj_, hp.n_embd);
  grow(q_, hp.n_embd_q()); grow(attn_, hp.n_embd_q());
  grow(k_, hp.n_embd_kv()); grow(v_, hp.n_embd_kv());
  grow(gate_, hp.n_ff); grow(up_, hp.n_ff);
  grow(rope_cs_, hp.n_rot);

  if (weights_) LIME_TRY_VOID(weights_->begin_pass());
  LIME_TRY_VOID(embed(b));
  thread_pool::busy_scope busy(*pool_);  // the pass's loops follow each other closely
  // Each token's rope (c, s), once for all layers (rope_ref would recompute them per layer, for q and for k).
  per_token(n, [&](size_t t0, size_t t1) {
    cpu::rope_cos_sin(&b.pos[t0], static_cast<int64_t>(t1 - t0), hp.n_rot, model_->rope_inv_freq().data(),
                      rope_cs_.data() + t0 * static_cast<size_t>(hp.n_rot));
  });
  for (int32_t l = range_.lo; l < range_.hi; ++l) {
    const layer_weights* w = &model_->layer(l);
    if (weights_) {
      LIME_TRY(w, weights_->acquire(l));
      weights_->prefetch(l + 1);
    }
    attention_block(l, *w, b);
    ffn_block(*w, n);
    if (weights_) weights_->release(l);
  }
  if (range_.hi == hp.n_layer) {
    out.hidden.clear();
    LIME_TRY_VOID(output_head(b, out));
  } else {
    out.hidden.assign(x_.begin(), x_.begin() + static_cast<std::ptrdiff_t>(n * static_cast<size_t>(hp.n_embd)));
    out.logits.clear();
    out.logit_rows.clear();
  }
  return {};
}

}  // namespace lime
