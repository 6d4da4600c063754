// Single-sequence generation: prefix reuse, chunked prefill, sampling loop, finish reasons, logits checksum.
#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "runtime/checksum.h"

namespace lime {
namespace {

constexpr int32_t k_seq = 0;  // the one sequence of a single-process session

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* finish_reason_name(finish_reason r) {
  switch (r) {
    case finish_reason::end_of_generation: return "eog";
    case finish_reason::length: return "length";
    case finish_reason::context_full: return "context";
    case finish_reason::cancelled: return "cancelled";
  }
  return "?";
}

result<std::unique_ptr<session>> session::create(const model& m, const vocab& voc, const session_config& cfg) {
  const model_hparams& hp = m.hparams();
  std::unique_ptr<session> s(new session());
  s->model_ = &m;
  s->vocab_ = &voc;
  s->cfg_ = cfg;
  s->n_ctx_ = cfg.n_ctx > 0 ? cfg.n_ctx : std::min(hp.n_ctx_train, 4096);
  if (s->n_ctx_ < 1) return make_error(errc::invalid_argument, "context size must be positive");
  if (s->cfg_.n_batch < 1) s->cfg_.n_batch = 1;
  if (voc.n_tokens() > hp.n_vocab)
    return make_error(errc::bad_format, "the vocabulary has " + std::to_string(voc.n_tokens()) + " tokens but the model's output has " + std::to_string(hp.n_vocab));
  const int n_threads = cfg.n_threads > 0 ? cfg.n_threads : default_thread_count();
  LIME_TRY(s->backend_, make_backend(cfg.backend));
  s->pool_ = std::make_unique<thread_pool>(n_threads);
  kv_cache_config kc;
  kc.n_layer = hp.n_layer;
  kc.row_elems = hp.n_embd_kv();
  kc.type = cfg.kv_type;
  kc.block_size = 32;
  kc.max_blocks = (s->n_ctx_ + kc.block_size - 1) / kc.block_size;
  if (cfg.mem_budget > 0) {
    // --- budget: the split decides the KV pool and the weight store's share (runtime/mem_budget.h)
    if (m.file().path().empty())
      return make_error(errc::invalid_argument, "a memory budget needs a model loaded from a file (the weights are streamed from it)");
    mem_budget_config bc;
    bc.budget = cfg.mem_budget;
    bc.n_ctx = s->n_ctx_;
    bc.n_batch = s->cfg_.n_batch;
    bc.n_threads = n_threads;
    bc.kv_type = cfg.kv_type;
    bc.kv_block_size = kc.block_size;
    bc.store = cfg.store;
    LIME_TRY(mem_budget_split split, mem_budget_plan(m, bc));
    // Before the store allocates: the read-ahead of the model's load leaves file pages cached that the streamed
    // weights never use, and a memory cgroup charges them to this process.
    LIME_TRY_VOID(mem_budget_drop_file_cache(m.file().path()));
    kc.max_blocks = split.kv_blocks;
    weight_store_config sc = cfg.store;
    sc.range = layer_range{0, hp.n_layer};
    sc.budget = split.weights;
    if (s->backend_->unified()) {  // the device reads the store's buffers in place
      std::weak_ptr<backend> wb = s->backend_;
      sc.on_map = [wb](void* p, uint64_t n) -> status {
        auto b = wb.lock();
        return b ? b->host_register(p, n) : status{};
      };
      sc.on_unmap = [wb](void* p) {
        if (auto b = wb.lock()) b->host_unregister(p);
      };
    }
    LIME_TRY(s->store_, weight_store::create(m, m.file().path(), sc));
    s->budget_ = split;
  }
  kc.allocator = s->backend_->kv_allocator();
  LIME_TRY(kv_cache kv, kv_cache::create(kc));
  s->kv_ = std::make_unique<kv_cache>(std::move(kv));
  forward_engine_args fa;
  fa.m = &m;
  fa.range = layer_range{0, hp.n_layer};
  fa.kv = s->kv_.get();
  fa.pool = s->pool_.get();
  fa.weights = s->store_.get();
  fa.weights_registered = s->store_ && s->backend_->unified();
  fa.max_batch = std::min(s->cfg_.n_batch, s->n_ctx_);
  fa.max_logit_rows = 1;  // the last row of a prefill chunk, or the decoded token
  LIME_TRY(s->fwd_, s->backend_->make_forward(fa));
  return s;
}

void session::reset() {
  kv_->release(k_seq);
  tokens_.clear();
  checksum_ = 0;
}

size_t session::reuse_prefix(const std::vector<int32_t>& prompt) {
  size_t common = 0;
  while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common]) ++common;
  // The last prompt token is always evaluated again: its logits are needed to sample.
  if (common == prompt.size()) --common;
  tokens_.resize(common);
  kv_->truncate(k_seq, static_cast<int32_t>(common));
  return common;
}

result<void> session::prefill(const std::vector<int32_t>& prompt, size_t from, const std::atomic<bool>* cancel, bool* cancelled) {
  *cancelled = false;
  const size_t n_batch = static_cast<size_t>(cfg_.n_batch);
  for (size_t start = from; start < prompt.size(); start += n_batch) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      *cancelled = true;
      return {};
    }
    const size_t end = std::min(prompt.size(), start + n_batch);
    batch_.clear();
    for (size_t i = start; i < end; ++i)
      batch_.add(prompt[i], static_cast<int32_t>(i), k_seq, i + 1 == prompt.size());
    LIME_TRY_VOID(fwd_->run(batch_, out_));
    tokens_.insert(tokens_.end(), prompt.begin() + static_cast<std::ptrdiff_t>(start), prompt.begin() + static_cast<std::ptrdiff_t>(end));
  }
  logits_.assign(out_.logits.begin(), out_.logits.end());
  return {};
}

result<void> session::decode_one(int32_t token) {
  batch_.clear();
  batch_.add(token, static_cast<int32_t>(tokens_.size()), k_seq, true);
  LIME_TRY_VOID(fwd_->run(batch_, out_));
  tokens_.push_back(token);
  logits_.swap(out_.logits);
  return {};
}

result<std::vector<float>> session::eval_logits(const std::vector<int32_t>& prompt) {
  if (prompt.empty()) return make_error(errc::invalid_argument, "empty prompt");
  if (prompt.size() > static_cast<size_t>(n_ctx_))
    return make_error(errc::invalid_argument, "prompt is " + std::to_string(prompt.size()) + " tokens, the context holds " + std::to_string(n_ctx_));
  bool cancelled = false;
  LIME_TRY_VOID(prefill(prompt, reuse_prefix(prompt), nullptr, &cancelled));
  return logits_;
}

result<generation_stats> session::generate(const std::vector<int32_t>& prompt, const sampling_params& sp, int32_t n_predict,
                                           const std::function<bool(int32_t)>& on_token, const std::atomic<bool>* cancel,
                                           bool ignore_eog) {
  generation_stats st;
  if (prompt.empty()) return make_error(errc::invalid_argument, "empty prompt: nothing to generate from");
  if (prompt.size() > static_cast<size_t>(n_ctx_))
    return make_error(errc::invalid_argument, "prompt is " + std::to_string(prompt.size()) + " tokens, longer than the context of " +
                                                  std::to_string(n_ctx_) + " (use -c to enlarge it)");
  st.n_prompt = static_cast<int32_t>(prompt.size());
  st.checksum = checksum_;

  // --- prefill
  auto t0 = std::chrono::steady_clock::now();
  const size_t from = reuse_prefix(prompt);
  st.n_prompt_cached = static_cast<int32_t>(from);
  bool cancelled = false;
  LIME_TRY_VOID(prefill(prompt, from, cancel, &cancelled));
  st.prompt_seconds = seconds_since(t0);
  if (cancelled) {
    st.reason = finish_reason::cancelled;
    return st;
  }

  // --- decode
  const int32_t n_vocab = model_->hparams().n_vocab;
  t0 = std::chrono::steady_clock::now();
  for (;;) {
    if (n_predict >= 0 && st.n_generated >= n_predict) { st.reason = finish_reason::length; break; }
    if (tokens_.size() >= static_cast<size_t>(n_ctx_)) { st.reason = finish_reason::context_full; break; }
    if (cancel && cancel->load(std::memory_order_relaxed)) { st.reason = finish_reason::cancelled; break; }
    const int64_t position = static_cast<int64_t>(tokens_.size());
    checksum_ = logits_checksum_step(checksum_, logits_.data(), n_vocab);
    st.checksum = checksum_;
    if (ignore_eog) {
      for (int32_t e : vocab_->end_of_generation_ids)
        if (e >= 0 && e < n_vocab) logits_[static_cast<size_t>(e)] = -INFINITY;
    }
    const int32_t id = sample_token(logits_.data(), n_vocab, sp, tokens_.data(), static_cast<int64_t>(tokens_.size()), position, scratch_);
    ++st.n_generated;
    if (vocab_->is_end_of_generation(id)) { st.reason = finish_reason::end_of_generation; break; }
    if (on_token && !on_token(id)) { st.reason = finish_reason::cancelled; break; }
    if (n_predict >= 0 && st.n_generated >= n_predict) { st.reason = finish_reason::length; break; }
    if (tokens_.size() + 1 > static_cast<size_t>(n_ctx_)) { st.reason = finish_reason::context_full; break; }
    LIME_TRY_VOID(decode_one(id));
  }
  st.gen_seconds = seconds_since(t0);
  return st;
}

}  // namespace lime
