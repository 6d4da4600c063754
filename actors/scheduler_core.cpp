// scheduler_core: request admission, continuous batching, the stop rules of session::generate applied to sampled
// tokens coming back from the pipeline, streaming, and replay of lost work. Single-threaded (the scheduler actor's
// thread only); never talks to the network itself: everything it wants sent goes through take_outgoing().
#include "actors/scheduler_core.h"

#include <algorithm>
#include <cfloat>
#include <limits>
#include <utility>

namespace lime {

struct scheduler_core::request_state {
  request_state(const tokenizer& tok, bool remove_space_prefix) : detok(tok, /*special=*/false, remove_space_prefix) {}

  std::string peer;
  uint64_t id = 0;
  sampling_params params;
  int32_t n_predict = -1;
  bool ignore_eos = false;
  std::vector<int32_t> tokens;  // [n_prompt + generated] the prompt, then every generated token but an eog one
  int32_t n_prompt = 0;
  int32_t n_generated = 0;      // tokens sampled, the end-of-generation one included (as generation_stats counts)
  uint64_t checksum = 0;        // logits-checksum chain after the last sampled token
  int32_t seq_id = 0;           // 0 while queued
  int32_t frontier = 0;         // positions [0, frontier) of tokens are in the pipeline's KV under seq_id
  uint64_t batch_id = 0;        // the batch in flight carrying rows of this sequence (0: none)
  int32_t batch_rows = 0;       // rows [frontier, frontier + batch_rows) are in that batch
  bool batch_samples = false;   // the batch's last row of this sequence asks for a sample
  detokenizer_stream detok;
  double t_admit = -1;          // seconds (caller's clock); < 0: not yet
  double t_first = -1;          // when the first token came back; < 0: not yet
  int32_t lost_at = -1;         // tokens.size() when a batch of it was last lost (-1: never)
  int32_t stalls = 0;           // losses in a row without a token generated in between

  int32_t pending() const { return static_cast<int32_t>(tokens.size()) - frontier; }
};

namespace {

// sampler.cpp's apply_penalties rule: when it holds, the history is never read, so none is sent.
bool penalty_active(const sampling_params& p) {
  const float penalty = p.repeat_penalty;
  return p.repeat_last_n != 0 && penalty > 0.0f && penalty <= FLT_MAX && penalty != 1.0f;
}

}  // namespace

scheduler_core::scheduler_core(const tokenizer& tok, scheduler_config cfg) : tok_(&tok), cfg_(cfg) {
  cfg_.n_ctx = std::max(cfg_.n_ctx, 1);
  cfg_.max_batch_tokens = std::max(cfg_.max_batch_tokens, 1);
  cfg_.max_in_flight = std::max(cfg_.max_in_flight, 1);
  cfg_.max_active = std::max(cfg_.max_active, 1);
}

scheduler_core::~scheduler_core() = default;

size_t scheduler_core::requests() const { return requests_.size(); }
size_t scheduler_core::active() const { return requests_.size() - queue_.size(); }
size_t scheduler_core::in_flight() const { return batches_.size(); }
uint64_t scheduler_core::replays() const { return replays_; }

std::vector<uint64_t> scheduler_core::in_flight_batch_ids() const {
  std::vector<uint64_t> ids;
  ids.reserve(batches_.size());
  for (const auto& [id, members] : batches_) ids.push_back(id);
  return ids;
}

std::vector<scheduler_out> scheduler_core::take_outgoing() {
  std::vector<scheduler_out> out;
  out.swap(out_);
  return out;
}

int32_t scheduler_core::new_seq_id() {
  const int32_t id = next_seq_id_;
  next_seq_id_ = next_seq_id_ == std::numeric_limits<int32_t>::max() ? 1 : next_seq_id_ + 1;
  return id;
}

// --- requests in

void scheduler_core::submit(const std::string& peer, const msg::generation_request& req, double now) {
  (void)now;  // timing starts at admission
  auto reject = [&](std::string message) {
    out_.push_back({peer, msg::error_report{req.request_id, "invalid_argument", std::move(message)}});
  };
  const auto key = std::make_pair(peer, req.request_id);
  if (requests_.count(key)) return reject("request " + std::to_string(req.request_id) + " is already running");

  bool remove_space_prefix = false;
  auto prompt = conversation_prompt(*tok_, req.messages, req.raw, &remove_space_prefix);
  if (!prompt.ok()) return reject(prompt.err().message);
  // session::generate's checks, same order and words (less lime-chat's flag hint).
  if (prompt->empty()) return reject("empty prompt: nothing to generate from");
  const size_t n_ctx = static_cast<size_t>(cfg_.n_ctx);
  if (prompt->size() > n_ctx)
    return reject("prompt is " + std::to_string(prompt->size()) + " tokens, longer than the context of " +
                  std::to_string(cfg_.n_ctx));

  // session::generate's loop stops before the first sample on these (length first): same visible result.
  const char* instant = nullptr;
  if (req.n_predict == 0) instant = "length";
  else if (prompt->size() >= n_ctx) instant = "context";
  if (instant) {
    msg::generation_done d;
    d.request_id = req.request_id;
    d.finish_reason = instant;
    d.n_prompt = static_cast<int32_t>(prompt->size());
    d.checksum = req.checksum_init;
    out_.push_back({peer, std::move(d)});
    return;
  }

  auto r = std::make_unique<request_state>(*tok_, remove_space_prefix);
  r->peer = peer;
  r->id = req.request_id;
  r->params = req.params;
  r->n_predict = req.n_predict;
  r->ignore_eos = req.ignore_eos;
  r->n_prompt = static_cast<int32_t>(prompt->size());
  r->tokens = std::move(*prompt);
  r->checksum = req.checksum_init;
  queue_.push_back(r.get());
  requests_.emplace(key, std::move(r));
}

void scheduler_core::admit(double now) {
  while (!queue_.empty() && active() < static_cast<size_t>(cfg_.max_active) && !admit_blocked_) {
    request_state* r = queue_.front();
    queue_.pop_front();
    r->seq_id = new_seq_id();
    r->frontier = 0;
    if (r->t_admit < 0) r->t_admit = now;  // a preempted request keeps its first admission time
    ready_.push_back(r);
  }
}

void scheduler_core::cancel(const std::string& peer, uint64_t request_id, double now) {
  auto it = requests_.find({peer, request_id});
  if (it != requests_.end()) finish(it->second.get(), "cancelled", now);
}

void scheduler_core::client_lost(const std::string& peer) {
  std::vector<request_state*> lost;
  for (auto& [key, r] : requests_)
    if (key.first == peer) lost.push_back(r.get());
  for (request_state* r : lost) erase(r);
}

// --- batches out

std::vector<msg::micro_batch_msg> scheduler_core::next_batches(double now) {
  admit(now);
  std::vector<msg::micro_batch_msg> out;
  const size_t free_slots = batches_.size() < static_cast<size_t>(cfg_.max_in_flight)
                                ? static_cast<size_t>(cfg_.max_in_flight) - batches_.size() : 0;
  if (free_slots == 0 || ready_.empty()) return out;

  // Decode rows (one pending token) first so a long prefill never holds back the sequences already talking;
  // otherwise the ready queue's order (round robin: a sequence rejoins at the back when its batch returns).
  std::vector<request_state*> cands(ready_.begin(), ready_.end());
  std::stable_partition(cands.begin(), cands.end(), [](const request_state* r) { return r->pending() == 1; });
  // Spread over the free slots so the batches pipeline through the stages instead of queueing behind one.
  const size_t n_batches = std::min(free_slots, cands.size());
  const size_t per_batch = (cands.size() + n_batches - 1) / n_batches;

  size_t next = 0;
  for (size_t b = 0; b < n_batches && next < cands.size(); ++b) {
    msg::micro_batch_msg m;
    m.batch_id = next_batch_id_;
    m.first_layer = 0;
    std::vector<request_state*> members;
    int32_t budget = cfg_.max_batch_tokens;
    while (next < cands.size() && members.size() < per_batch && budget > 0) {
      request_state* r = cands[next++];
      const int32_t rows = std::min(r->pending(), budget);
      const bool samples = rows == r->pending();  // the chunk reaches the last known token
      for (int32_t i = 0; i < rows; ++i) {
        const int32_t pos = r->frontier + i;
        m.batch.add(r->tokens[static_cast<size_t>(pos)], pos, r->seq_id, samples && i + 1 == rows);
      }
      if (samples) {
        msg::seq_sampling s;
        s.seq_id = r->seq_id;
        s.params = r->params;
        s.checksum = r->checksum;
        s.ignore_eog = r->ignore_eos;
        if (penalty_active(r->params)) {
          const size_t n = r->tokens.size();
          const int32_t last_n = r->params.repeat_last_n;
          const size_t window = last_n < 0 ? n : std::min(n, static_cast<size_t>(last_n));
          s.history.assign(r->tokens.end() - static_cast<std::ptrdiff_t>(window), r->tokens.end());
        }
        m.sampling.push_back(std::move(s));
      }
      r->batch_id = m.batch_id;
      r->batch_rows = rows;
      r->batch_samples = samples;
      members.push_back(r);
      budget -= rows;
    }
    if (members.empty()) break;
    ++next_batch_id_;
    batches_.emplace(m.batch_id, std::move(members));
    out.push_back(std::move(m));
  }
  ready_.erase(std::remove_if(ready_.begin(), ready_.end(), [](const request_state* r) { return r->batch_id != 0; }),
               ready_.end());
  return out;
}

// --- results in

bool scheduler_core::on_sampled(const msg::sampled_tokens& st, double now) {
  auto it = batches_.find(st.batch_id);
  if (it == batches_.end()) return false;
  std::vector<request_state*> members = std::move(it->second);
  batches_.erase(it);

  std::vector<int32_t> freed;
  take_deferred_free(st.batch_id, &freed);
  for (request_state* r : members) {
    if (!r) continue;  // ended while the batch was in flight
    r->batch_id = 0;
    r->frontier += r->batch_rows;
    if (!r->batch_samples) {
      ready_.push_back(r);
      continue;
    }
    const msg::sampled_token* t = nullptr;
    for (const msg::sampled_token& c : st.tokens)
      if (c.seq_id == r->seq_id) { t = &c; break; }
    // A reply without this sequence's token, or for another position, is not to be trusted: start it over.
    if (!t || t->position != static_cast<int32_t>(r->tokens.size())) {
      replay(r, &freed);
      ready_.push_back(r);
      continue;
    }
    if (t->token < 0 || t->token >= tok_->get_vocab().n_tokens()) {
      out_.push_back({r->peer, msg::error_report{r->id, "internal",
                                                 "the pipeline sampled token " + std::to_string(t->token) +
                                                     ", outside the vocabulary"}});
      erase(r);
      continue;
    }
    consume(r, *t, now);  // may end (and free) r
  }
  if (!freed.empty()) out_.push_back({"*", msg::seq_free{std::move(freed)}});
  return true;
}

void scheduler_core::consume(request_state* r, const msg::sampled_token& t, double now) {
  if (r->t_first < 0) r->t_first = now;
  r->checksum = t.checksum;
  ++r->n_generated;
  if (tok_->get_vocab().is_end_of_generation(t.token)) return finish(r, "eog", now);
  r->tokens.push_back(t.token);
  out_.push_back({r->peer, msg::token_stream{r->id, {t.token}, r->detok.push(t.token)}});
  if (r->n_predict >= 0 && r->n_generated >= r->n_predict) return finish(r, "length", now);
  // session::generate evaluates the token and then finds the context full: the token is the last one either way.
  if (r->tokens.size() >= static_cast<size_t>(cfg_.n_ctx)) return finish(r, "context", now);
  ready_.push_back(r);
}

// --- replay, ending

void scheduler_core::replay(request_state* r, std::vector<int32_t>* freed) {
  freed->push_back(r->seq_id);
  r->seq_id = new_seq_id();
  r->frontier = 0;
  r->batch_id = 0;
  r->batch_rows = 0;
  r->batch_samples = false;
  ++replays_;
}

bool scheduler_core::on_batch_lost(uint64_t batch_id, const std::string& why) {
  auto it = batches_.find(batch_id);
  if (it == batches_.end()) return false;
  std::vector<request_state*> members = std::move(it->second);
  batches_.erase(it);
  std::vector<int32_t> freed;
  take_deferred_free(batch_id, &freed);
  // A stage refused the batch (`why`: e.g. its KV pool is full and it has no weight budget left to give). With
  // other sequences active, this one is preempted: it waits in the queue, first, until one of them ends and frees
  // its KV. Alone, and lost again at the same length, replaying cannot get it further: it ends with an error.
  const bool refused = !why.empty();
  const size_t n_members = static_cast<size_t>(std::count_if(members.begin(), members.end(), [](auto* r) { return r; }));
  const size_t others = active() - n_members;  // active sequences outside this batch
  bool kept = false;                           // with nobody else active, the first member stays ready
  std::vector<request_state*> stuck, preempted;
  for (request_state* r : members) {
    if (!r) continue;
    const int32_t len = static_cast<int32_t>(r->tokens.size());
    if (refused && others == 0 && n_members == 1) {
      r->stalls = len <= r->lost_at ? r->stalls + 1 : 0;
      r->lost_at = std::max(r->lost_at, len);
    }
    replay(r, &freed);
    if (r->stalls + 1 >= k_max_stalls) {
      stuck.push_back(r);
    } else if (refused && (others > 0 || kept)) {
      preempted.push_back(r);
    } else {
      ready_.push_back(r);
      kept = true;
    }
  }
  if (!freed.empty()) out_.push_back({"*", msg::seq_free{std::move(freed)}});
  for (auto it = preempted.rbegin(); it != preempted.rend(); ++it) {
    request_state* r = *it;
    r->seq_id = 0;  // its KV was freed with the replay; admission gives it a new sequence
    r->frontier = 0;
    queue_.push_front(r);
    admit_blocked_ = true;
  }
  for (request_state* r : stuck) {
    out_.push_back({r->peer, msg::error_report{r->id, "resource_exhausted",
                                               "the request stopped at " + std::to_string(r->tokens.size()) +
                                                   " positions: a pipeline stage cannot hold it (" + why + ")"}});
    r->frontier = 0;  // its sequence was freed by the replay above
    erase(r);
  }
  return true;
}

void scheduler_core::replay_all() {
  // Ready ones keep their turn; the ones that were in flight follow in batch order.
  std::vector<request_state*> order(ready_.begin(), ready_.end());
  for (auto& [id, members] : batches_)
    for (request_state* r : members)
      if (r) order.push_back(r);
  batches_.clear();
  ready_.clear();
  std::vector<int32_t> freed;
  for (auto& [id, seqs] : deferred_free_) freed.insert(freed.end(), seqs.begin(), seqs.end());
  deferred_free_.clear();
  for (request_state* r : order) {
    // Never sent: no KV and nothing stale can exist under its id, so it keeps it.
    if (r->frontier > 0 || r->batch_id != 0) replay(r, &freed);
    ready_.push_back(r);
  }
  if (!freed.empty()) out_.push_back({"*", msg::seq_free{std::move(freed)}});
}

void scheduler_core::fail_all(const std::string& code, const std::string& message) {
  std::vector<request_state*> all;
  for (auto& [key, r] : requests_) all.push_back(r.get());
  for (request_state* r : all) {
    out_.push_back({r->peer, msg::error_report{r->id, code, message}});
    erase(r);
  }
  // Nothing in flight belongs to anyone now; the slots are free for whatever comes next.
  batches_.clear();
  std::vector<int32_t> freed;
  for (auto& [id, seqs] : deferred_free_) freed.insert(freed.end(), seqs.begin(), seqs.end());
  deferred_free_.clear();
  if (!freed.empty()) out_.push_back({"*", msg::seq_free{std::move(freed)}});
}

void scheduler_core::finish(request_state* r, const char* reason, double now) {
  std::string rest = r->detok.flush();
  if (!rest.empty()) out_.push_back({r->peer, msg::token_stream{r->id, {}, std::move(rest)}});
  msg::generation_done d;
  d.request_id = r->id;
  d.finish_reason = reason;
  d.n_prompt = r->n_prompt;
  d.n_generated = r->n_generated;
  d.checksum = r->checksum;
  if (r->t_admit >= 0) {
    d.prompt_seconds = (r->t_first >= 0 ? r->t_first : now) - r->t_admit;
    d.gen_seconds = r->t_first >= 0 ? now - r->t_first : 0.0;
  }
  out_.push_back({r->peer, std::move(d)});
  erase(r);
}

void scheduler_core::take_deferred_free(uint64_t batch_id, std::vector<int32_t>* freed) {
  auto it = deferred_free_.find(batch_id);
  if (it == deferred_free_.end()) return;
  freed->insert(freed->end(), it->second.begin(), it->second.end());
  deferred_free_.erase(it);
}

void scheduler_core::erase(request_state* r) {
  if (r->seq_id != 0) admit_blocked_ = false;  // an active sequence ends: its KV is free for preempted requests
  auto batch = r->batch_id != 0 ? batches_.find(r->batch_id) : batches_.end();
  if (batch != batches_.end()) {
    std::replace(batch->second.begin(), batch->second.end(), r, static_cast<request_state*>(nullptr));
    if (r->seq_id != 0) deferred_free_[r->batch_id].push_back(r->seq_id);
  } else if (r->seq_id != 0 && r->frontier > 0) {  // frontier 0: no batch ever carried this id
    out_.push_back({"*", msg::seq_free{{r->seq_id}}});
  }
  queue_.erase(std::remove(queue_.begin(), queue_.end(), r), queue_.end());
  ready_.erase(std::remove(ready_.begin(), ready_.end(), r), ready_.end());
  requests_.erase({r->peer, r->id});  // frees r: last
}

}  // namespace lime
