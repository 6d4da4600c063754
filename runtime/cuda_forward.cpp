// cuda_forward: setup under the device budget, and the pass itself: per layer the CPU pass's steps (norm, q/k/v,
// rope, KV store, attention, output projection, residual; norm, gate/up, SwiGLU, down, residual) as kernel launches
// on the compute stream, then the head (rows that want logits gathered first, as the CPU compacts them).
#include "runtime/cuda_forward.h"

#if LIME_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cuda/ops.h"

namespace lime {
namespace {

status kernel_ok(const cuda::cuda_status& s, const char* op) {
  if (s.ok()) return {};
  if (s.k != kstatus::ok) return make_error(errc::internal, std::string("cuda ") + op + ": " + s.message);
  return make_error(s.cuda_error == 2 /* cudaErrorMemoryAllocation */ ? errc::out_of_memory : errc::io_error,
                    std::string("cuda ") + op + ": " + s.message);
}

#define LIME_CK(expr, op) LIME_TRY_VOID(kernel_ok((expr), op))

uint64_t mib(uint64_t b) { return (b + (1ull << 20) - 1) >> 20; }

}  // namespace

result<std::unique_ptr<forward_engine>> make_cuda_forward(std::shared_ptr<backend> be, const forward_engine_args& a) {
  LIME_TRY(std::unique_ptr<cuda_forward> f, cuda_forward::create(std::move(be), a));
  return std::unique_ptr<forward_engine>(std::move(f));
}

result<std::unique_ptr<cuda_forward>> cuda_forward::create(std::shared_ptr<backend> be, const forward_engine_args& a) {
  if (!a.m || !a.kv || !a.pool) return make_error(errc::invalid_argument, "cuda forward: needs a model, a KV cache and a pool");
  const model_hparams& hp = a.m->hparams();
  const layer_range r = a.range;
  if (r.lo < 0 || r.hi > hp.n_layer || r.lo >= r.hi) return make_error(errc::invalid_argument, "cuda forward: bad layer range");
  if (a.weights && (a.weights->range().lo != r.lo || a.weights->range().hi != r.hi))
    return make_error(errc::invalid_argument, "cuda forward: the weight source serves a different layer range");
  if (!a.kv->config().allocator)
    return make_error(errc::invalid_argument, "cuda forward: the KV cache must take its blocks from the backend's kv_allocator()");
  if (hp.head_dim > 256) return make_error(errc::unsupported, "cuda forward: head_dim above 256 is not supported");
  LIME_TRY_VOID(be->activate());
  std::unique_ptr<cuda_forward> f(new cuda_forward());
  f->be_ = be;
  f->model_ = a.m;
  f->range_ = r;
  f->kv_ = a.kv;
  f->pool_ = a.pool;
  f->inv_freq_ = a.m->rope_inv_freq();
  LIME_TRY(f->compute_, be->stream_create());
  LIME_TRY(f->copy_, be->stream_create());

  // --- budget: KV pool (its blocks are allocated as sequences grow), activations, inputs; the rest is weights'
  const bool last = r.hi == hp.n_layer;
  const size_t rows = static_cast<size_t>(std::max(1, a.max_batch));
  const size_t out_rows = last ? std::min(rows, static_cast<size_t>(std::max(1, a.max_logit_rows))) : 0;
  const kv_cache& kv = *a.kv;
  const uint64_t kv_block = (kv.block_bytes() + 255) / 256 * 256;
  const int32_t kv_missing = std::max(0, kv.config().max_blocks - kv.blocks_allocated());
  const uint64_t kv_bytes = static_cast<uint64_t>(kv_missing) * kv_block;
  const uint64_t act_bytes = activation_bytes(hp, rows, out_rows, last);
  const uint64_t in_bytes = f->layout(rows, out_rows, std::min(kv.config().max_blocks, 64)).total;
  const uint64_t fast_bytes = be->fast_prefill() ? fast_scratch_bytes(hp, rows) : 0;
  const uint64_t avail = be->available();
  const uint64_t need = kv_bytes + act_bytes + in_bytes + fast_bytes;
  // Unified: the weights' share is read by a host weight store (it checks its own minimum); else one device slot.
  const uint64_t min_w = be->unified() ? 0 : cuda_weights::min_device_bytes(*a.m, r);
  if (avail < need + min_w)
    return make_error(errc::out_of_memory,
                      "cuda forward: the device budget has " + std::to_string(mib(avail)) + " MiB free; the KV pool (" +
                          std::to_string(mib(kv_bytes)) + " MiB), activations for " + std::to_string(rows) + " rows (" +
                          std::to_string(mib(act_bytes + in_bytes)) + " MiB) and one streaming slot of the largest layer (" +
                          std::to_string(mib(min_w)) + " MiB) need at least " + std::to_string(mib(need + min_w)) + " MiB");
  const uint64_t weight_budget = avail > need ? avail - need : 0;

  // --- weights
  cuda_weights_config wc;
  wc.budget = weight_budget;
  f->src_ = a.weights;
  wc.in_place = be->unified() && (a.weights ? a.weights_registered : true);
  if (be->unified() && !a.weights) {
    // Unified without a source: a weight store reads the file (O_DIRECT) straight into registered host memory under
    // the weights' share of the budget, and the kernels read it there: no second copy.
    if (a.m->file().path().empty())
      return make_error(errc::invalid_argument, "cuda forward: the unified path reads the model's file; this model has none");
    weight_store_config sc;
    sc.range = r;
    sc.budget = weight_budget;
    std::weak_ptr<backend> wb = be;
    sc.on_map = [wb](void* p, uint64_t n) -> status {
      auto b = wb.lock();
      return b ? b->host_register(p, n) : status{};
    };
    sc.on_unmap = [wb](void* p) {
      if (auto b = wb.lock()) b->host_unregister(p);
    };
    LIME_TRY(f->own_store_, weight_store::create(*a.m, a.m->file().path(), sc));
    f->src_ = f->own_store_.get();
  }
  LIME_TRY(f->weights_, cuda_weights::create(be, *a.m, r, f->src_, wc, f->compute_, f->copy_));
  LIME_TRY_VOID(f->grow_scratch(rows, out_rows));
  LIME_TRY_VOID(f->grow_inputs(in_bytes));
  if (be->fast_prefill()) {
    LIME_TRY_VOID(kernel_ok(cuda::blas_create(&f->blas_), "cublasCreate"));
    LIME_TRY_VOID(f->grow_fast_scratch(rows));
  }
  return f;
}

cuda_forward::~cuda_forward() {
  if (!be_) return;
  (void)be_->activate();
  if (compute_) (void)be_->synchronize(compute_);
  if (copy_) (void)be_->synchronize(copy_);
  weights_.reset();
  be_->free(act_);
  be_->free(fast_scratch_);
  cuda::blas_destroy(blas_);
  be_->free(s_.logits);
  be_->free(in_dev_);
  be_->free_host(in_host_);
  be_->free_host(out_host_);
  be_->stream_destroy(compute_);
  be_->stream_destroy(copy_);
  own_store_.reset();  // its buffers are unregistered through the (still alive) backend
}

status cuda_forward::matmul(const weight_view& m, const float* x, size_t n, float* y) {
  const cuda::matmul_args a{m.type, m.data, m.n_rows, m.k, x, static_cast<int64_t>(n), y};
  if (!blas_ || n < static_cast<size_t>(k_fast_prefill_rows)) return kernel_ok(cuda::matmul(a, compute_), "matmul");
  LIME_TRY_VOID(grow_fast_scratch(n));
  return kernel_ok(cuda::matmul_fast(a, blas_, fast_scratch_, fast_scratch_bytes(model_->hparams(), fast_rows_), compute_),
                   "matmul_fast");
}

status cuda_forward::attention_block(int32_t layer, const layer_weights& w, size_t n_rows, const input_layout& lay) {
  const model_hparams& hp = model_->hparams();
  const int64_t n = static_cast<int64_t>(n_rows);
  const int64_t n_embd = hp.n_embd, n_kv = hp.n_embd_kv();
  const int64_t kl = layer - range_.lo;
  const tensor_type kv_type = kv_->config().type;
  cuda::stream_t st = compute_;
  auto mm = [&](const weight_view& m, const float* x, float* y) { return matmul(m, x, n_rows, y); };
  uint8_t* in = static_cast<uint8_t*>(in_dev_);

  // --- norm, q/k/v projections, rope
  LIME_CK(cuda::rmsnorm(s_.x, static_cast<const float*>(w.attn_norm.data), s_.cur, n, n_embd, hp.rms_eps, st), "rmsnorm");
  LIME_TRY_VOID(mm(w.wq, s_.cur, s_.q));
  LIME_TRY_VOID(mm(w.wk, s_.cur, s_.k));
  LIME_TRY_VOID(mm(w.wv, s_.cur, s_.v));
  if (hp.n_rot > 0) {
    const float* cs = reinterpret_cast<const float*>(in + lay.cs);
    LIME_CK(cuda::rope(s_.q, cs, n, hp.n_head, hp.head_dim, hp.n_rot, hp.rope_neox, st), "rope");
    LIME_CK(cuda::rope(s_.k, cs, n, hp.n_head_kv, hp.head_dim, hp.n_rot, hp.rope_neox, st), "rope");
  }

  // --- store K/V of every token first, so tokens later in the batch see earlier ones
  void* const* dst = reinterpret_cast<void* const*>(in + lay.dst);
  LIME_CK(cuda::kv_store(s_.k, dst + (kl * 2 + 0) * n, n, n_kv, kv_type, st), "kv_store");
  LIME_CK(cuda::kv_store(s_.v, dst + (kl * 2 + 1) * n, n, n_kv, kv_type, st), "kv_store");

  // --- attention per (token, head) against the paged cache
  const void* const* tab = reinterpret_cast<const void* const*>(in + lay.tab);
  cuda::attention_args a;
  a.q = s_.q;
  a.kv_type = kv_type;
  a.k_blocks = tab + (kl * 2 + 0) * n * lay.max_blocks;
  a.v_blocks = tab + (kl * 2 + 1) * n * lay.max_blocks;
  a.max_blocks = lay.max_blocks;
  a.n_pos = reinterpret_cast<const int32_t*>(in + lay.n_pos);
  a.block_size = kv_->config().block_size;
  a.kv_row_elems = n_kv;
  a.n_head = hp.n_head;
  a.n_head_kv = hp.n_head_kv;
  a.head_dim = hp.head_dim;
  a.n_tok = n;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  a.out = s_.attn;
  LIME_CK(cuda::attention(a, st), "attention");

  // --- output projection + residual
  LIME_TRY_VOID(mm(w.wo, s_.attn, s_.proj));
  LIME_CK(cuda::add(s_.x, s_.proj, s_.x, n * n_embd, st), "add");
  return {};
}

status cuda_forward::ffn_block(const layer_weights& w, size_t n_rows) {
  const model_hparams& hp = model_->hparams();
  const int64_t n = static_cast<int64_t>(n_rows);
  cuda::stream_t st = compute_;
  auto mm = [&](const weight_view& m, const float* x, float* y) { return matmul(m, x, n_rows, y); };
  LIME_CK(cuda::rmsnorm(s_.x, static_cast<const float*>(w.ffn_norm.data), s_.cur, n, hp.n_embd, hp.rms_eps, st), "rmsnorm");
  LIME_TRY_VOID(mm(w.w_gate, s_.cur, s_.gate));
  LIME_TRY_VOID(mm(w.w_up, s_.cur, s_.up));
  LIME_CK(cuda::swiglu(s_.gate, s_.up, s_.gate, n * hp.n_ff, st), "swiglu");
  LIME_TRY_VOID(mm(w.w_down, s_.gate, s_.proj));
  LIME_CK(cuda::add(s_.x, s_.proj, s_.x, n * hp.n_embd, st), "add");
  return {};
}

// Rows that want logits are gathered into cur (row r = batch row logit_rows[r]), normed, and multiplied by the head
// block by block, each block's rows written straight into their columns of the logits (y_stride n_vocab): y[c, r]
// depends only on row r of the matrix and row c of the input, so blocks give the same bits.
status cuda_forward::output_head(size_t n_rows, size_t n_out_rows, const input_layout& lay, forward_output& out) {
  const model_hparams& hp = model_->hparams();
  const int64_t n = static_cast<int64_t>(n_rows), n_out = static_cast<int64_t>(n_out_rows), n_vocab = hp.n_vocab;
  cuda::stream_t st = compute_;
  out.logits.resize(n_out_rows * static_cast<size_t>(n_vocab));
  if (n_out == 0) return be_->synchronize(compute_);
  LIME_TRY(const float* norm, weights_->output_norm());
  if (n_out == n) {
    LIME_CK(cuda::rmsnorm(s_.x, norm, s_.cur, n, hp.n_embd, hp.rms_eps, st), "rmsnorm");
  } else {
    const int32_t* ids = reinterpret_cast<const int32_t*>(static_cast<uint8_t*>(in_dev_) + lay.ids);
    LIME_CK(cuda::get_rows(tensor_type::f32, s_.x, n, hp.n_embd, ids, n_out, s_.cur, st), "get_rows");
    LIME_CK(cuda::rmsnorm(s_.cur, norm, s_.cur, n_out, hp.n_embd, hp.rms_eps, st), "rmsnorm");
  }
  for (;;) {
    LIME_TRY(weight_rows rows, weights_->head_next());
    const int64_t nr = rows.w.n_rows;
    if (nr == 0) break;
    LIME_CK(cuda::matmul(cuda::matmul_args{rows.w.type, rows.w.data, nr, rows.w.k, s_.cur, n_out, s_.logits + rows.row0,
                                           n_vocab},
                         st),
            "matmul");
    LIME_TRY_VOID(weights_->head_done());
  }
  const uint64_t bytes = static_cast<uint64_t>(n_out) * static_cast<uint64_t>(n_vocab) * sizeof(float);
  LIME_TRY_VOID(be_->copy_async(out_host_, s_.logits, bytes, copy_kind::device_to_host, compute_));
  LIME_TRY_VOID(be_->synchronize(compute_));
  std::memcpy(out.logits.data(), out_host_, static_cast<size_t>(bytes));
  return {};
}

status cuda_forward::run_pass(const micro_batch& b, forward_output& out) {
  const model_hparams& hp = model_->hparams();
  const size_t n = b.size();
  size_t n_out = 0;
  if (range_.hi == hp.n_layer)
    for (uint8_t w : b.want_logits) n_out += w ? 1 : 0;
  int32_t max_blocks = 1;
  const int32_t bs = kv_->config().block_size;
  for (int32_t p : b.pos) max_blocks = std::max(max_blocks, (p + bs) / bs);  // blocks holding [0, p]
  const input_layout lay = layout(n, n_out, max_blocks);
  LIME_TRY_VOID(grow_scratch(std::max(n, s_.rows), std::max(n_out, s_.out_rows)));
  LIME_TRY_VOID(grow_inputs(lay.total));
  const uint64_t out_bytes = std::max<uint64_t>(n_out * static_cast<uint64_t>(hp.n_vocab), n * static_cast<uint64_t>(hp.n_embd)) * 4;
  if (out_bytes > out_cap_) {
    be_->free_host(out_host_);
    out_host_ = nullptr;
    out_cap_ = 0;
    LIME_TRY(out_host_, be_->alloc_host(out_bytes));
    out_cap_ = out_bytes;
  }

  if (src_) LIME_TRY_VOID(src_->begin_pass());
  LIME_TRY_VOID(stage_inputs(b, lay));
  // The batch's input activations (embedding rows, or the previous stage's) become the residual stream x.
  LIME_TRY_VOID(be_->copy_async(s_.x, static_cast<const uint8_t*>(in_dev_) + lay.x, n * static_cast<uint64_t>(hp.n_embd) * 4,
                                copy_kind::device_to_device, compute_));
  LIME_TRY_VOID(weights_->begin_pass());
  for (int32_t l = range_.lo; l < range_.hi; ++l) {
    LIME_TRY(const layer_weights* w, weights_->layer(l));
    LIME_TRY_VOID(attention_block(l, *w, n, lay));
    LIME_TRY_VOID(ffn_block(*w, n));
    LIME_TRY_VOID(weights_->layer_done(l));
  }
  out.logit_rows.clear();
  if (range_.hi == hp.n_layer) {
    out.hidden.clear();
    for (size_t i = 0; i < n; ++i)
      if (b.want_logits[i]) out.logit_rows.push_back(static_cast<int32_t>(i));
    return output_head(n, n_out, lay, out);
  }
  const uint64_t bytes = n * static_cast<uint64_t>(hp.n_embd) * sizeof(float);
  LIME_TRY_VOID(be_->copy_async(out_host_, s_.x, bytes, copy_kind::device_to_host, compute_));
  LIME_TRY_VOID(be_->synchronize(compute_));
  const float* h = static_cast<const float*>(out_host_);
  out.hidden.assign(h, h + n * static_cast<size_t>(hp.n_embd));
  out.logits.clear();
  return {};
}

result<void> cuda_forward::run(const micro_batch& b, forward_output& out) {
  const model_hparams& hp = model_->hparams();
  if (range_.lo < 0 || range_.hi > hp.n_layer || range_.lo >= range_.hi)
    return make_error(errc::invalid_argument, "forward: bad layer range");
  LIME_TRY_VOID(be_->activate());
  LIME_TRY_VOID(forward_check_and_reserve(*model_, range_, *kv_, b));
  const status st = run_pass(b, out);
  if (!st.ok()) weights_->abort_pass();
  return st;
}

}  // namespace lime
#endif
