// One sequence's generation in one process: prefill (reusing the KV of the longest common prefix with what was
// evaluated before, so a multi-turn chat only prefills the new turn), then decode with sampling until an
// end-of-generation token, the token limit, the context limit or a cancel. Owns the KV cache and scratch.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/backend.h"
#include "runtime/forward.h"
#include "runtime/kv_cache.h"
#include "runtime/mem_budget.h"
#include "runtime/model.h"
#include "runtime/result.h"
#include "runtime/sampler.h"
#include "runtime/thread_pool.h"
#include "runtime/vocab.h"
#include "runtime/weight_store.h"

namespace lime {

enum class finish_reason { end_of_generation, length, context_full, cancelled };
const char* finish_reason_name(finish_reason r);  // "eog", "length", "context", "cancelled"

struct session_config {
  int32_t n_ctx = 0;      // 0: the model's training context, capped at 4096
  int32_t n_threads = 0;  // 0: all online CPUs
  int32_t n_batch = 512;  // prompt tokens per forward call during prefill
  tensor_type kv_type = tensor_type::f32;  // f16 is an explicit opt-in (not bitwise equal to f32 KV)
  // Hard memory budget of the process in bytes (runtime/mem_budget.h); 0: no limit, weights read from the mapped
  // file. With a budget the weights go through a weight_store (resident share + O_DIRECT streaming) and the KV
  // pool holds exactly n_ctx positions. The model must have been loaded from a file (the store reads it).
  uint64_t mem_budget = 0;
  weight_store_config store;  // the store's settings with a budget (its budget and range are set from the split)
  // Where the forward pass runs (runtime/backend.h): cpu (the default here; apps default to cuda when a device is
  // present) or cuda, with its device budget. With cuda the KV cache is in device memory; a host mem_budget still
  // streams the weights from the file, and the device pass copies (or, unified, reads in place) what it streams.
  backend_options backend;
};

struct generation_stats {
  int32_t n_prompt = 0;         // prompt tokens given
  int32_t n_prompt_cached = 0;  // of which reused from the KV cache
  int32_t n_generated = 0;      // tokens sampled (the end-of-generation token included)
  double prompt_seconds = 0.0;
  double gen_seconds = 0.0;
  uint64_t checksum = 0;        // chain over the logits of every token generated since reset() (this turn included)
  finish_reason reason = finish_reason::length;
};

class session {
 public:
  // voc: for end-of-generation ids (kept by reference; must outlive the session). With cfg.mem_budget, errors
  // also: out_of_memory (the budget cannot hold the KV for n_ctx next to the weight store's minimum; the message
  // says the smallest budget that works), invalid_argument (a model not loaded from a file), io_error.
  static result<std::unique_ptr<session>> create(const model& m, const vocab& voc, const session_config& cfg);

  // Generates after `prompt` (the whole conversation so far, BOS included where wanted).
  // n_predict < 0: no limit but the context. on_token(id) is called for every sampled token except the
  // end-of-generation one; returning false cancels. `cancel` (may be null) is polled between forward calls.
  // Errors: invalid_argument (empty prompt, prompt longer than the context), out_of_memory.
  // ignore_eog: end-of-generation tokens are never sampled (their logits are masked after the checksum is taken).
  result<generation_stats> generate(const std::vector<int32_t>& prompt, const sampling_params& sp, int32_t n_predict,
                                    const std::function<bool(int32_t)>& on_token, const std::atomic<bool>* cancel,
                                    bool ignore_eog = false);

  // Runs the prompt and returns the logits of its last token without sampling (tests, benchmarks).
  result<std::vector<float>> eval_logits(const std::vector<int32_t>& prompt);

  const std::vector<int32_t>& tokens() const { return tokens_; }  // tokens whose KV is held
  void reset();
  int32_t n_ctx() const { return n_ctx_; }
  int n_threads() const { return pool_->n_threads(); }
  const kv_cache& kv() const { return *kv_; }
  // With a memory budget: the store serving the weights and the split; nullptr without one.
  const weight_store* weights() const { return store_.get(); }
  const mem_budget_split* budget() const { return budget_ ? &*budget_ : nullptr; }
  const backend& device() const { return *backend_; }
  const forward_engine& engine() const { return *fwd_; }

 private:
  session() = default;
  // Evaluates prompt[from..] in n_batch chunks; the logits of the last token land in logits_.
  result<void> prefill(const std::vector<int32_t>& prompt, size_t from, const std::atomic<bool>* cancel, bool* cancelled);
  result<void> decode_one(int32_t token);
  size_t reuse_prefix(const std::vector<int32_t>& prompt);

  const model* model_ = nullptr;
  const vocab* vocab_ = nullptr;
  session_config cfg_;
  int32_t n_ctx_ = 0;
  std::shared_ptr<backend> backend_;  // outlives the KV cache (its blocks) and the engine
  std::unique_ptr<thread_pool> pool_;
  std::unique_ptr<kv_cache> kv_;
  std::optional<mem_budget_split> budget_;  // set with a memory budget
  std::unique_ptr<weight_store> store_;      // with a budget; declared before fwd_, which uses it
  std::unique_ptr<forward_engine> fwd_;
  micro_batch batch_;
  forward_output out_;
  std::vector<float> logits_;  // [n_vocab] of the last evaluated token
  std::vector<int32_t> tokens_;
  uint64_t checksum_ = 0;  // running logits checksum chain since reset()
  sampler_scratch scratch_;
};

}  // namespace lime
