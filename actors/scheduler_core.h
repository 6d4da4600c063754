// The head's request book-keeping and batching, free of CAF so it can be tested step by step: admits generation
// requests (renders the conversation and tokenizes it exactly as runtime/chat does), forms micro-batches for the
// pipeline (continuous batching: sequences join and leave between steps), consumes sampled tokens, decides when a
// request ends (the same rules and order as session::generate), streams UTF-8-complete text, and replays requests
// whose micro-batches were lost (new sequence id, re-prefill of prompt + tokens so far). The scheduler actor wraps it.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "messages/wire_types.h"
#include "runtime/tokenizer.h"

namespace lime {

struct scheduler_config {
  int32_t n_ctx = 2048;            // context per sequence (positions)
  int32_t max_batch_tokens = 512;  // rows per micro-batch (prefill chunks are cut to fit)
  int32_t max_in_flight = 2;       // micro-batches in the pipeline at once (the actor sets it to the stage count)
  int32_t max_active = 16;         // sequences holding KV at once; more requests wait in a queue (FIFO)
};

// A message the caller must deliver. peer: a client's name for token_stream / generation_done / error_report;
// "*" for seq_free (every node frees the KV of those sequences).
struct scheduler_out {
  std::string peer;
  msg::body body;
};

class scheduler_core {
 public:
  // tok must outlive the core; its vocab gives eog ids and the chat template.
  scheduler_core(const tokenizer& tok, scheduler_config cfg);
  ~scheduler_core();

  // A request from client `peer` (request ids are the client's; (peer, id) is the key). A bad request (empty
  // message in template mode, invalid UTF-8, prompt longer than the context, duplicate id) is answered at once with
  // an error_report (code "invalid_argument") in take_outgoing(). Otherwise it is queued; `now` is in seconds on
  // any monotonic clock (for the timing in generation_done).
  void submit(const std::string& peer, const msg::generation_request& req, double now);

  // Ends the request with finish reason "cancelled" (generation_done) and frees its KV (seq_free). Unknown: ignored.
  void cancel(const std::string& peer, uint64_t request_id, double now);
  // The client is gone: its requests end silently (no message to it) and free their KV.
  void client_lost(const std::string& peer);

  // Micro-batches to send now, at most max_in_flight - in_flight(): ready sequences (admitted, not in a batch in
  // flight) are spread over the free slots, decode rows first, then prefill chunks up to max_batch_tokens rows per
  // batch. first_layer is 0, tokens are set, batch ids are unique and increasing; the caller stamps the epoch.
  std::vector<msg::micro_batch_msg> next_batches(double now);

  // A batch's sampled tokens came back. Returns false (and changes nothing) for an unknown batch id (a duplicate, or
  // a batch forgotten by replay_all / on_batch_lost).
  bool on_sampled(const msg::sampled_tokens& st, double now);

  // A batch will not come back: timed out (`why` empty) or refused by a stage (`why`: its error, e.g. a full KV
  // pool). Its sequences are replayed. After a refusal while other sequences are active, they are preempted
  // instead: back to the front of the queue, admitted again once an active sequence ends (the KV pool runs dry ->
  // preempt and replay). A sequence refused k_max_stalls times in a row while alone, at the same length, cannot get
  // further: its request ends with an error_report (code "resource_exhausted", naming `why`). Returns false for an
  // unknown batch id.
  bool on_batch_lost(uint64_t batch_id, const std::string& why = std::string());
  static constexpr int32_t k_max_stalls = 3;
  // The placement changed: every KV is gone. All in-flight batches are forgotten and every active request replays
  // (one that was never sent keeps its sequence id: nothing was computed under it).
  void replay_all();
  // The cluster cannot serve: every active and queued request ends with an error_report (code, message).
  void fail_all(const std::string& code, const std::string& message);

  std::vector<scheduler_out> take_outgoing();

  // The pipeline's depth changed (new placement): how many batches may be in flight from now on.
  void set_max_in_flight(int32_t n) { cfg_.max_in_flight = n > 0 ? n : 1; }

  size_t requests() const;           // active + queued
  size_t active() const;             // holding a sequence
  size_t in_flight() const;          // batches sent and not yet back
  std::vector<uint64_t> in_flight_batch_ids() const;
  uint64_t replays() const;          // sequences replayed so far

  struct request_state;
 private:
  void admit(double now);
  int32_t new_seq_id();
  // Consumes one sampled token of r (session::generate's rules, in its order); may end r.
  void consume(request_state* r, const msg::sampled_token& t, double now);
  // r starts over under a fresh sequence id from position 0; its old id is appended to *freed.
  void replay(request_state* r, std::vector<int32_t>* freed);
  // Ends r: the detokenizer's rest, generation_done, then erase().
  void finish(request_state* r, const char* reason, double now);
  void take_deferred_free(uint64_t batch_id, std::vector<int32_t>* freed);
  // seq_free of its sequence (deferred while a batch of it is in flight), removal from every list; frees r.
  void erase(request_state* r);

  const tokenizer* tok_;
  scheduler_config cfg_;
  std::map<std::pair<std::string, uint64_t>, std::unique_ptr<request_state>> requests_;
  std::deque<request_state*> queue_;               // waiting for admission, FIFO
  std::deque<request_state*> ready_;               // admitted, not in flight, FIFO (round robin)
  std::map<uint64_t, std::vector<request_state*>> batches_;  // batch id -> its sequences (null: ended meanwhile)
  // Sequences that ended while a batch of theirs was in flight: their seq_free waits until the batch is back or
  // lost, so it cannot overtake the batch on its way down the pipeline and leave KV behind.
  std::map<uint64_t, std::vector<int32_t>> deferred_free_;  // batch id -> seq ids
  std::vector<scheduler_out> out_;
  uint64_t next_batch_id_ = 1;
  int32_t next_seq_id_ = 1;
  uint64_t replays_ = 0;
  bool admit_blocked_ = false;  // a sequence was preempted: admit nothing until an active one ends
};

// The prompt tokens of a conversation, rendered and tokenized exactly as chat_session does (template mode when the
// vocab has a template lime can render and !raw, else plain completion: the concatenated contents, system turns
// skipped). *remove_space_prefix: what chat_session passes to its detokenizer_stream. Errors: invalid_argument.
result<std::vector<int32_t>> conversation_prompt(const tokenizer& tok, const std::vector<msg::chat_turn>& turns,
                                                 bool raw, bool* remove_space_prefix);

}  // namespace lime
