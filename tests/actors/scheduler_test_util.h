// Helpers for the scheduler_core tests: stories260K loading, a one-process stand-in for the whole pipeline (every
// layer, one paged KV for all sequences, sampling as pipeline_stage specifies), a driver that moves messages
// between the core and that pipeline, and lime-chat's own answer to compare with.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/scheduler_core.h"
#include "runtime/chat.h"
#include "runtime/checksum.h"
#include "runtime/forward.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "runtime/thread_pool.h"
#include "runtime/tokenizer.h"

#include "tests/stories.h"

namespace lime::test {

struct stories : stories_model {
  // chat_template / add_bos: overrides of the vocab (stories260K has no template), for template-mode tests.
  bool load(const std::string& dir, const std::string& chat_template = "", bool add_bos = true) {
    return stories_model::load(dir, [&](vocab& v) {
      v.chat_template = chat_template;
      v.add_bos = add_bos;
    });
  }
};

// Every layer in one forward pass; a batch's sampled rows as pipeline_stage::run defines them.
class fake_pipeline {
 public:
  fake_pipeline(const model& m, const vocab& voc) : m_(&m), voc_(&voc), pool_(1) {
    const model_hparams& hp = m.hparams();
    kv_cache_config kc;
    kc.n_layer = hp.n_layer;
    kc.row_elems = hp.n_embd_kv();
    kc.block_size = 32;
    kc.max_blocks = 4096;
    auto kv = kv_cache::create(kc);
    EXPECT_TRUE(kv.ok());
    kv_ = std::make_unique<kv_cache>(std::move(*kv));
    fwd_ = std::make_unique<forward_pass>(m, layer_range{0, hp.n_layer}, *kv_, pool_);
  }

  msg::sampled_tokens run(const msg::micro_batch_msg& b) {
    msg::sampled_tokens st;
    st.batch_id = b.batch_id;
    EXPECT_EQ(b.first_layer, 0);
    auto r = fwd_->run(b.batch, out_);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    if (!r.ok()) return st;
    const int32_t n_vocab = m_->hparams().n_vocab;
    EXPECT_EQ(out_.logit_rows.size(), b.sampling.size());
    for (size_t i = 0; i < out_.logit_rows.size() && i < b.sampling.size(); ++i) {
      const int32_t row = out_.logit_rows[i];
      const msg::seq_sampling& s = b.sampling[i];
      EXPECT_EQ(s.seq_id, b.batch.seq[static_cast<size_t>(row)]);
      std::vector<float> logits(out_.logits.begin() + static_cast<std::ptrdiff_t>(i) * n_vocab,
                                out_.logits.begin() + static_cast<std::ptrdiff_t>(i + 1) * n_vocab);
      msg::sampled_token t;
      t.seq_id = s.seq_id;
      t.position = b.batch.pos[static_cast<size_t>(row)] + 1;
      t.checksum = logits_checksum_step(s.checksum, logits.data(), n_vocab);
      if (s.ignore_eog)
        for (int32_t e : voc_->end_of_generation_ids)
          if (e >= 0 && e < n_vocab) logits[static_cast<size_t>(e)] = -INFINITY;
      t.token = sample_token(logits.data(), n_vocab, s.params, s.history.data(),
                             static_cast<int64_t>(s.history.size()), t.position, scratch_);
      st.tokens.push_back(t);
    }
    return st;
  }
  void free(const msg::seq_free& f) {
    for (int32_t id : f.seq_ids) kv_->release(id);
  }
  int32_t blocks_in_use() const { return kv_->blocks_in_use(); }

 private:
  const model* m_;
  const vocab* voc_;
  thread_pool pool_;
  std::unique_ptr<kv_cache> kv_;
  std::unique_ptr<forward_pass> fwd_;
  forward_output out_;
  sampler_scratch scratch_;
};

// What one client saw of one request.
struct client_view {
  std::vector<int32_t> tokens;
  std::string text;
  int streams = 0;
  bool done = false;
  msg::generation_done done_msg;
  std::vector<msg::error_report> errors;
  int after_end = 0;  // messages that arrived after generation_done or an error
};

// Moves messages between a scheduler_core and a fake_pipeline, like the scheduler actor and the stages would.
struct sched_driver {
  sched_driver(const stories& s, scheduler_config cfg) : core(*s.tok, cfg), pipe(*s.m, s.tok->get_vocab()) {}

  scheduler_core core;
  fake_pipeline pipe;
  std::map<std::pair<std::string, uint64_t>, client_view> views;
  std::deque<msg::micro_batch_msg> pending;  // sent, not yet run
  std::set<int32_t> seqs_seen, seqs_freed;
  double now = 0;
  size_t max_rows = 0;         // most rows seen in one batch
  size_t chunks_without_sample = 0;

  client_view& view(const std::string& peer, uint64_t id) { return views[{peer, id}]; }

  void submit(const std::string& peer, const msg::generation_request& req) {
    core.submit(peer, req, now);
    drain();
  }
  void drain() {
    for (scheduler_out& o : core.take_outgoing()) {
      if (o.peer == "*") {
        auto* f = std::get_if<msg::seq_free>(&o.body);
        ASSERT_NE(f, nullptr);
        for (int32_t id : f->seq_ids) {
          EXPECT_TRUE(seqs_freed.insert(id).second) << "sequence " << id << " freed twice";
        }
        pipe.free(*f);
        continue;
      }
      if (auto* ts = std::get_if<msg::token_stream>(&o.body)) {
        client_view& v = view(o.peer, ts->request_id);
        if (v.done || !v.errors.empty()) ++v.after_end;
        v.tokens.insert(v.tokens.end(), ts->tokens.begin(), ts->tokens.end());
        v.text += ts->text;
        ++v.streams;
      } else if (auto* d = std::get_if<msg::generation_done>(&o.body)) {
        client_view& v = view(o.peer, d->request_id);
        if (v.done || !v.errors.empty()) ++v.after_end;
        v.done = true;
        v.done_msg = *d;
      } else if (auto* e = std::get_if<msg::error_report>(&o.body)) {
        client_view& v = view(o.peer, e->request_id);
        if (v.done || !v.errors.empty()) ++v.after_end;
        v.errors.push_back(*e);
      } else {
        ADD_FAILURE() << "unexpected message to " << o.peer;
      }
    }
  }
  // Asks the core for batches; checks that they stay within the limits and that no sequence is in two at once.
  void pump() {
    now += 0.001;
    for (msg::micro_batch_msg& b : core.next_batches(now)) {
      max_rows = std::max(max_rows, b.batch.size());
      size_t wanted = 0;
      for (uint8_t w : b.batch.want_logits) wanted += w;
      EXPECT_EQ(wanted, b.sampling.size());
      std::set<int32_t> in_batch(b.batch.seq.begin(), b.batch.seq.end());
      if (wanted < in_batch.size()) ++chunks_without_sample;
      for (const msg::micro_batch_msg& p : pending)
        for (int32_t s : p.batch.seq) EXPECT_EQ(in_batch.count(s), 0u) << "sequence " << s << " in two batches";
      seqs_seen.insert(in_batch.begin(), in_batch.end());
      check_rows(b);
      pending.push_back(std::move(b));
    }
    EXPECT_LE(core.in_flight(), pending.size() + 0);  // every batch the core counts is one we hold
    drain();
  }
  // Every sequence's rows start at position 0 and continue where its last batch stopped; a sampled row sends the
  // repetition window of the sequence's tokens up to and including that row (none when the penalty is off).
  void check_rows(const msg::micro_batch_msg& b) {
    size_t k = 0;
    for (size_t i = 0; i < b.batch.size(); ++i) {
      std::vector<int32_t>& seq = seq_tokens[b.batch.seq[i]];
      EXPECT_EQ(b.batch.pos[i], static_cast<int32_t>(seq.size())) << "sequence " << b.batch.seq[i];
      seq.push_back(b.batch.tokens[i]);
      if (!b.batch.want_logits[i] || k >= b.sampling.size()) continue;
      const sampling_params& p = b.sampling[k++].params;
      size_t window = p.repeat_last_n < 0 ? seq.size() : std::min(seq.size(), static_cast<size_t>(p.repeat_last_n));
      if (p.repeat_penalty == 1.0f || p.repeat_last_n == 0) window = 0;
      const std::vector<int32_t> want(seq.end() - static_cast<std::ptrdiff_t>(window), seq.end());
      EXPECT_EQ(b.sampling[k - 1].history, want);
    }
  }
  std::map<int32_t, std::vector<int32_t>> seq_tokens;  // per sequence id: the tokens of the rows sent so far

  // Runs pending[i] through the pipeline and returns its result to the core.
  msg::sampled_tokens step(size_t i) {
    msg::micro_batch_msg b = std::move(pending[i]);
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
    msg::sampled_tokens st = pipe.run(b);
    now += 0.001;
    EXPECT_TRUE(core.on_sampled(st, now));
    drain();
    return st;
  }
  // Pumps and steps (pick chooses which pending batch runs next) until every request has ended.
  template <typename Pick>
  void run(Pick pick, int max_steps = 100000) {
    for (int i = 0; i < max_steps; ++i) {
      pump();
      if (pending.empty()) {
        EXPECT_EQ(core.requests(), 0u) << "requests left but no batch to run";
        return;
      }
      step(pick(pending.size()));
    }
    ADD_FAILURE() << "did not finish in " << max_steps << " steps";
  }
  void run_fifo() { run([](size_t) { return size_t{0}; }); }
  // Everything ended and freed: no request, no batch, no KV, every sequence ever used freed once.
  void expect_clean() {
    EXPECT_EQ(core.requests(), 0u);
    EXPECT_EQ(core.active(), 0u);
    EXPECT_EQ(core.in_flight(), 0u);
    EXPECT_EQ(pipe.blocks_in_use(), 0);
    EXPECT_EQ(seqs_seen, seqs_freed);
  }
};

inline sampling_params greedy(float repeat_penalty = 1.0f, int32_t repeat_last_n = 64) {
  sampling_params p;
  p.temperature = 0.0f;
  p.repeat_penalty = repeat_penalty;
  p.repeat_last_n = repeat_last_n;
  return p;
}
inline sampling_params seeded(uint64_t seed, float repeat_penalty = 1.0f, int32_t repeat_last_n = 64) {
  sampling_params p;
  p.temperature = 0.8f;
  p.seed = seed;
  p.repeat_penalty = repeat_penalty;
  p.repeat_last_n = repeat_last_n;
  return p;
}

// lime-chat's answer to the last of `users` (earlier ones are answered first, as in an interactive chat).
struct chat_reference {
  msg::generation_request req;  // the same conversation as a request (earlier answers as assistant turns)
  std::vector<int32_t> tokens;  // generated ids, eog excluded (from session::generate on the same prompt)
  std::string text;             // what chat_session::turn streamed for the last turn
  generation_stats stats;       // of the last turn
};

inline chat_reference chat_answer(const stories& s, int32_t n_ctx, const std::vector<std::string>& users,
                                  const chat_options& opts, uint64_t request_id = 1) {
  chat_reference ref;
  session_config sc;
  sc.n_ctx = n_ctx;
  sc.n_threads = 1;
  auto sess = session::create(*s.m, s.tok->get_vocab(), sc);
  EXPECT_TRUE(sess.ok());
  chat_session chat(**sess, *s.tok, opts);
  ref.req.request_id = request_id;
  ref.req.params = opts.sampling;
  ref.req.n_predict = opts.n_predict;
  ref.req.raw = opts.raw;
  ref.req.ignore_eos = opts.ignore_eos;
  ref.req.want_checksum = true;
  if (!opts.system_prompt.empty()) ref.req.messages.push_back({"system", opts.system_prompt});
  for (size_t i = 0; i < users.size(); ++i) {
    ref.req.messages.push_back({"user", users[i]});
    std::string answer;
    auto st = chat.turn(users[i], [&](const std::string& piece) { answer += piece; return true; }, nullptr);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
    if (!st.ok()) return ref;
    if (i + 1 < users.size()) {
      ref.req.messages.push_back({"assistant", answer});
      ref.req.checksum_init = st->checksum;
    } else {
      ref.text = answer;
      ref.stats = *st;
    }
  }
  // The token ids: the prompt chat_session evaluated (its KV now starts with it), generated once more.
  std::vector<int32_t> prompt((*sess)->tokens().begin(), (*sess)->tokens().begin() + ref.stats.n_prompt);
  auto fresh = session::create(*s.m, s.tok->get_vocab(), sc);
  EXPECT_TRUE(fresh.ok());
  auto st = (*fresh)->generate(prompt, opts.sampling, opts.n_predict, [&](int32_t id) {
    ref.tokens.push_back(id);
    return true;
  }, nullptr, opts.ignore_eos);
  EXPECT_TRUE(st.ok());
  if (st.ok()) {
    EXPECT_EQ(st->n_generated, ref.stats.n_generated);
  }
  return ref;
}

// The distributed run of a request equals lime-chat's answer: tokens, text, checksum, counts, reason.
inline void expect_same(const client_view& v, const chat_reference& ref, const std::string& what) {
  EXPECT_TRUE(v.errors.empty()) << what << ": " << (v.errors.empty() ? "" : v.errors[0].message);
  ASSERT_TRUE(v.done) << what;
  EXPECT_EQ(v.tokens, ref.tokens) << what;
  EXPECT_EQ(v.text, ref.text) << what;
  EXPECT_EQ(v.done_msg.checksum, ref.stats.checksum) << what;
  EXPECT_EQ(v.done_msg.n_generated, ref.stats.n_generated) << what;
  EXPECT_EQ(v.done_msg.n_prompt, ref.stats.n_prompt) << what;
  EXPECT_EQ(v.done_msg.finish_reason, finish_reason_name(ref.stats.reason)) << what;
  EXPECT_EQ(v.after_end, 0) << what;
}

}  // namespace lime::test
