// Plain C++ forms of every frame lime sends (mirrors messages/lime.capnp). Actors exchange these; only the codec
// (messages/codec.h) touches Cap'n Proto.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "runtime/forward.h"
#include "runtime/sampler.h"

namespace lime::msg {

constexpr uint16_t k_protocol_version = 1;

struct seq_sampling {
  int32_t seq_id = 0;
  sampling_params params;
  uint64_t checksum = 0;          // chain before this token
  std::vector<int32_t> history;   // repetition-penalty window, oldest first
  bool ignore_eog = false;
};

struct micro_batch_msg {
  uint64_t batch_id = 0;
  int32_t first_layer = 0;
  micro_batch batch;                   // tokens (first_layer == 0) or embd [n, n_embd]; pos, seq, want_logits
  int32_t n_embd = 0;                  // row width of batch.embd
  std::vector<seq_sampling> sampling;  // one per row with want_logits, in row order
};

struct sampled_token {
  int32_t seq_id = 0;
  int32_t position = 0;
  int32_t token = 0;
  uint64_t checksum = 0;  // chain after this token
};
struct sampled_tokens {
  uint64_t batch_id = 0;
  std::vector<sampled_token> tokens;
};

struct prefetch_request { int32_t group = 0, layer_lo = 0, layer_hi = 0; };
struct prefetch_ready { int32_t group = 0; bool ok = true; std::string message; };

enum class pressure_level : uint8_t { low = 0, normal = 1, high = 2 };
struct memory_pressure {
  std::string node;
  uint64_t kv_bytes_used = 0, kv_bytes_limit = 0;
  pressure_level level = pressure_level::normal;
  uint64_t weight_bytes_resident = 0;  // the node's weights in memory (mapped, or the stores' resident part)
  uint64_t weight_bytes_streamed = 0;  // bytes its weight stores read per token
  uint64_t rss = 0, peak_rss = 0;      // the node process's resident set now and at its highest (bytes; 0 unknown)
};

struct layer_group_msg { int32_t layer_lo = 0, layer_hi = 0; std::string node; };
struct node_address { std::string name, host; uint16_t port = 0; };
struct assignment {
  std::vector<layer_group_msg> groups;  // pipeline order
  std::vector<node_address> nodes;
  uint64_t model_id = 0;
  std::string head;
};
struct node_profile {
  std::string name;
  uint64_t mem_budget = 0;
  double compute_rate = 0, storage_read_rate = 0;
  node_address listen;
  uint64_t model_id = 0;
};
struct heartbeat { uint64_t sequence = 0, sent_nanos = 0; };

struct chat_turn { std::string role, content; };
struct generation_request {
  uint64_t request_id = 0;
  std::vector<chat_turn> messages;
  sampling_params params;
  int32_t n_predict = -1;
  bool raw = false, ignore_eos = false, want_checksum = false;
  uint64_t checksum_init = 0;  // chain value to continue from (earlier turns of a chat)
};
struct token_stream { uint64_t request_id = 0; std::vector<int32_t> tokens; std::string text; };
struct generation_done {
  uint64_t request_id = 0;
  std::string finish_reason;
  int32_t n_prompt = 0, n_generated = 0;
  uint64_t checksum = 0;
  double prompt_seconds = 0, gen_seconds = 0;
};
struct cancel_request { uint64_t request_id = 0; };
struct error_report { uint64_t request_id = 0; std::string code, message; };

enum class peer_role : uint8_t { node = 0, client = 1 };
struct hello { std::string node_name; peer_role role = peer_role::node; std::vector<uint8_t> nonce; };
struct auth { std::vector<uint8_t> mac; };
struct seq_free { std::vector<int32_t> seq_ids; };
struct assignment_ack { std::string node; bool ok = true; std::string message; };
struct status_request {};
struct node_status {
  std::string name, address, groups;  // groups: "0-2,4-5" (hi exclusive)
  uint64_t mem_budget = 0, weight_bytes = 0, kv_bytes_used = 0, kv_bytes_limit = 0;
  double bandwidth_in = 0;  // bytes/s on the head's link from this node
  int64_t rtt_nanos = -1;
  bool alive = false;
  uint64_t weight_bytes_streamed = 0;  // per token; weight_bytes is then what stays resident
  uint64_t rss = 0, peak_rss = 0;      // its process's resident set and peak at its last report (bytes; 0 unknown)
};
struct cluster_status {
  uint64_t epoch = 0;
  std::string state;  // "serving", "placing", "below capacity", "waiting for nodes"
  uint64_t model_id = 0;
  uint32_t requests_active = 0, requests_queued = 0;
  std::vector<node_status> nodes;
  std::string message;
  uint64_t stale_dropped = 0, replays = 0;
  std::string chat_mode;  // template family name or "plain"
  int32_t n_ctx = 0;
};

using body = std::variant<hello, auth, heartbeat, micro_batch_msg, sampled_tokens, prefetch_request, prefetch_ready,
                          memory_pressure, assignment, node_profile, generation_request, token_stream,
                          generation_done, cancel_request, error_report, seq_free, assignment_ack, status_request,
                          cluster_status>;

struct frame {
  uint16_t version = k_protocol_version;
  uint64_t epoch = 0;
  body content;
};

// Short name of a frame's kind ("micro_batch", "heartbeat", ...) for logs, counters and fault rules.
const char* frame_kind(const frame& f);

}  // namespace lime::msg
