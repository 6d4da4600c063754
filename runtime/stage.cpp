// pipeline_stage: one layer range's forward pass with its own paged KV and thread pool, plus the last stage's
// per-row sampling (checksum step, eog mask, sample_token) done exactly as session::generate does it.
#include "runtime/stage.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/checksum.h"

namespace lime {

result<std::unique_ptr<pipeline_stage>> pipeline_stage::create(const model& m, const vocab& voc, const stage_config& cfg) {
  const model_hparams& hp = m.hparams();
  const layer_range r = cfg.range;
  if (r.lo < 0 || r.hi > hp.n_layer || r.lo >= r.hi)
    return make_error(errc::invalid_argument, "stage: layer range [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) +
                                                  ") is empty or outside the model's " + std::to_string(hp.n_layer) + " layers");
  if (cfg.kv_max_blocks < 1) return make_error(errc::invalid_argument, "stage: the KV block limit must be at least 1");
  if (cfg.kv_block_size < 1) return make_error(errc::invalid_argument, "stage: the KV block size must be at least 1");
  if (r.hi == hp.n_layer && voc.n_tokens() > hp.n_vocab)
    return make_error(errc::bad_format, "stage: the vocabulary has " + std::to_string(voc.n_tokens()) +
                                            " tokens but the model's output has " + std::to_string(hp.n_vocab));
  std::unique_ptr<pipeline_stage> s(new pipeline_stage());
  s->model_ = &m;
  s->vocab_ = &voc;
  s->cfg_ = cfg;
  kv_cache_config kc;
  kc.n_layer = r.hi - r.lo;
  kc.row_elems = hp.n_embd_kv();
  kc.type = cfg.kv_type;
  kc.block_size = cfg.kv_block_size;
  kc.max_blocks = cfg.kv_max_blocks;
  if (cfg.device) kc.allocator = cfg.device->kv_allocator();
  LIME_TRY(kv_cache kv, kv_cache::create(kc));
  s->kv_ = std::make_unique<kv_cache>(std::move(kv));
  s->pool_ = std::make_unique<thread_pool>(cfg.n_threads > 0 ? cfg.n_threads : default_thread_count());
  if (cfg.weights && (cfg.weights->range().lo != r.lo || cfg.weights->range().hi != r.hi))
    return make_error(errc::invalid_argument, "stage: the weight source serves a different layer range");
  if (!cfg.device) {
    s->fwd_ = std::make_unique<forward_pass>(m, r, *s->kv_, *s->pool_, cfg.weights);
    return s;
  }
  forward_engine_args fa;
  fa.m = &m;
  fa.range = r;
  fa.kv = s->kv_.get();
  fa.pool = s->pool_.get();
  fa.weights = cfg.weights;
  fa.max_batch = std::max(1, cfg.max_batch);
  fa.max_logit_rows = fa.max_batch;
  LIME_TRY(s->fwd_, cfg.device->make_forward(fa));
  return s;
}

bool pipeline_stage::is_last() const { return cfg_.range.hi == model_->hparams().n_layer; }

int32_t pipeline_stage::kv_blocks_in_use() const { return kv_->blocks_in_use(); }

uint64_t pipeline_stage::kv_block_bytes() const { return kv_->block_bytes(); }

result<void> pipeline_stage::set_kv_max_blocks(int32_t n) {
  LIME_TRY_VOID(kv_->set_max_blocks(n));
  cfg_.kv_max_blocks = n;
  return {};
}

void pipeline_stage::release(int32_t seq_id) { kv_->release(seq_id); }

void pipeline_stage::release_all() {
  // The cache does not list its sequences; a fresh cache with the same (already validated) config frees every
  // block. It is assigned in place, so the forward pass's reference to *kv_ stays valid.
  auto fresh = kv_cache::create(kv_->config());
  if (fresh.ok()) *kv_ = std::move(fresh.value());
}

result<void> pipeline_stage::run(const micro_batch& batch, const std::vector<row_sampling>& sampling,
                                 std::vector<float>* hidden, std::vector<sampled_row>* sampled) {
  const bool last = is_last();
  // --- validate before the forward pass reserves any KV
  if (batch.want_logits.size() != batch.size() || batch.seq.size() != batch.size())
    return make_error(errc::invalid_argument, "stage: batch arrays differ in length");
  if (last) {
    if (sampled == nullptr) return make_error(errc::invalid_argument, "stage: the last stage needs an output for sampled rows");
    size_t n_want = 0;
    for (uint8_t w : batch.want_logits) n_want += w ? 1 : 0;
    if (sampling.size() != n_want)
      return make_error(errc::invalid_argument, "stage: " + std::to_string(n_want) + " rows want logits but " +
                                                    std::to_string(sampling.size()) + " sampling entries were given");
  } else if (hidden == nullptr) {
    return make_error(errc::invalid_argument, "stage: a stage before the last needs an output for activations");
  }

  // --- forward
  LIME_TRY_VOID(fwd_->run(batch, out_));
  if (!last) {
    hidden->swap(out_.hidden);  // the caller's old buffer becomes scratch for the next run
    if (sampled) sampled->clear();
    return {};
  }
  if (hidden) hidden->clear();

  // --- sample, row by row in batch order (session::generate's order of steps)
  const int32_t n_vocab = model_->hparams().n_vocab;
  sampled->clear();
  sampled->reserve(out_.logit_rows.size());
  for (size_t i = 0; i < out_.logit_rows.size(); ++i) {
    const size_t r = static_cast<size_t>(out_.logit_rows[i]);
    const row_sampling& rs = sampling[i];
    const float* logits = out_.logits.data() + i * static_cast<size_t>(n_vocab);
    sampled_row o;
    o.seq_id = batch.seq[r];
    o.position = batch.pos[r] + 1;
    o.checksum = logits_checksum_step(rs.checksum, logits, n_vocab);
    if (rs.ignore_eog) {
      row_.assign(logits, logits + n_vocab);
      for (int32_t e : vocab_->end_of_generation_ids)
        if (e >= 0 && e < n_vocab) row_[static_cast<size_t>(e)] = -INFINITY;
      logits = row_.data();
    }
    o.token = sample_token(logits, n_vocab, rs.params, rs.history.data(), static_cast<int64_t>(rs.history.size()),
                           static_cast<int64_t>(o.position), scratch_);
    sampled->push_back(o);
  }
  return {};
}

uint64_t stage_weight_bytes(const model& m, layer_range range) {
  const int32_t n_layer = m.hparams().n_layer;
  const int32_t lo = range.lo < 0 ? 0 : range.lo;
  const int32_t hi = range.hi > n_layer ? n_layer : range.hi;
  if (lo >= hi) return 0;
  uint64_t n = 0;
  for (int32_t i = lo; i < hi; ++i) {
    const layer_weights& l = m.layer(i);
    for (const weight_view* w : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      n += w->n_bytes;
  }
  if (lo == 0) n += m.tok_embd().n_bytes;
  if (hi == n_layer) {
    n += m.output_norm().n_bytes;
    // output() is token_embd when tied: count it unless this stage already holds it for the embedding.
    if (!m.tied_embeddings() || lo != 0) n += m.output().n_bytes;
  }
  return n;
}

}  // namespace lime
