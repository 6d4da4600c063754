// What a node process is told at start (flags or cluster file) and the read-only model state its actors share.
// The app owns both and keeps them alive until the actor system is gone.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"

namespace lime {

struct host_port {
  std::string host;
  uint16_t port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
};

struct node_config {
  std::string name;                      // unique in the cluster
  host_port listen{"127.0.0.1", 0};      // port 0: a free port
  bool head = false;
  std::vector<host_port> peers;          // head: workers to dial (and to wait for before the first placement)
  host_port join;                        // worker: the head to dial (port 0: wait to be dialed)
  std::vector<uint8_t> secret;           // cluster secret (HMAC key)
  uint64_t mem_budget = 0;               // bytes for weights + KV + activations (runtime/node_budget.h); 0 = no limit
  int32_t n_threads = 0;                 // compute threads per layer group; 0 = all CPUs
  uint64_t model_id = 0;                 // content id (or full hash with --verify-model)
  double compute_rate = 0;               // measured fp32 FLOP/s of this node's compute threads (profile)
  double storage_read_rate = 0;          // measured cold read rate of the model file, bytes/s (profile)
  // Head only.
  std::string placement;                 // fixed placement "NAME=LO-HI,..." ("" = proportional to budgets)
  int32_t n_ctx = 0;                     // context per sequence; 0 = the model's, capped at 4096
  int32_t max_active = 8;                // sequences in the pipeline at once
  int32_t max_batch_tokens = 512;        // rows per micro-batch
  std::chrono::milliseconds peer_wait{10000};      // first placement: wait this long for --peers to join
  std::chrono::milliseconds batch_timeout{30000};  // a micro-batch not back by then is replayed
  std::chrono::milliseconds ack_timeout{60000};    // a node that has not built its groups by then is dropped
  // Network.
  std::chrono::milliseconds heartbeat_interval{200};
  std::chrono::milliseconds heartbeat_timeout{1000};
  // Test hook: the process exits (as if killed) when its layer groups have run this many micro-batches (-1: off).
  int64_t crash_after_batches = -1;
  // Test hook: false spawns layer groups and the loader on the scheduler instead of their own threads
  // (deterministic actor tests).
  bool detach_layer_groups = true;
};

// Shared, immutable model state (owned by the app).
struct node_context {
  const model* mdl = nullptr;
  const vocab* voc = nullptr;
  const tokenizer* tok = nullptr;
  std::shared_ptr<backend> device;  // where layer groups compute (runtime/backend.h); nullptr: the CPU forward_pass
};

}  // namespace lime
