// A hard memory budget for one process that runs a model: how the bytes split between streamed/resident weights,
// the KV cache, activations and a fixed overhead, and a reader of the process's resident set for the stats.
// Pure planning (no allocation); the session applies the split (runtime/session.h).
#pragma once
#include <cstdint>
#include <string>

#include "kernels/tensor_type.h"
#include "runtime/model.h"
#include "runtime/result.h"
#include "runtime/weight_store.h"

namespace lime {

// What the process will run; the budget covers everything it allocates for that (see mem_budget_split).
struct mem_budget_config {
  uint64_t budget = 0;        // bytes for the whole process, code, shared libraries and thread stacks excepted
  int32_t n_ctx = 0;          // positions the one sequence may reach (> 0)
  int32_t n_batch = 512;      // prompt tokens per forward call
  int32_t n_threads = 1;      // compute threads (the forward pass's pool)
  tensor_type kv_type = tensor_type::f32;
  int32_t kv_block_size = 32;  // positions per KV block
  weight_store_config store;  // the store's settings; its budget and range are set by the plan (all layers)
};

// The split. Every term is an upper bound of bytes the process holds for it at any time:
//  * fixed: everything that does not depend on n_ctx or the batch: 2 x the GGUF header (the file's metadata and
//    tensor table: once as mapped pages, once parsed); k_fixed_per_token per vocabulary entry for the vocabulary,
//    the tokenizer's tables (BPE ranks, token maps) and the parsed metadata arrays; and k_fixed_base for the
//    allocator's arenas (one per thread that allocates: compute, I/O), the C/C++ runtime's data, the rope and
//    tensor tables. Measured (anonymous RSS besides weights, KV and activations, lime-chat): 2.2 MiB with a
//    1000-token BPE vocabulary, 15.4 MiB with the 32000-token SentencePiece one, 28 MiB with GPT-2's 50257
//    tokens + merges, 59 MiB with deepseek-llm's 102400: the formula gives 11-13 MiB more than each. Code,
//    shared libraries and thread stacks are not in it (the cgroup test allows 64 MiB for those on top).
//    Loading the model also reads ahead around its header (up to read_ahead_kb of page cache); that happens
//    before anything else is allocated, and the session drops those pages (mem_budget_drop_file_cache) before
//    the weight store allocates.
//  * activations: the forward pass's scratch for a batch of min(n_batch, n_ctx) tokens (residual, norm,
//    q/k/v, attention output, projection, gate/up, rope (c, s): forward_token_scratch_floats per token, fp32),
//    its matmul scratch (forward_matmul_scratch_bytes), its per-thread attention scratch and block tables, the logits (the forward output and the session's copy,
//    [n_vocab] each) and the sampler's working arrays (4 x [n_vocab]).
//  * kv: the KV blocks that hold n_ctx positions (each block rounded up to whole pages).
//  * weights: what is left, the weight store's budget (resident tensors + ring of streaming buffers + the
//    embedding row buffer). It is at least the store's minimum (weight_plan_min_budget) or the plan fails.
struct mem_budget_split {
  uint64_t budget = 0;
  uint64_t fixed = 0;
  uint64_t activations = 0;
  uint64_t kv = 0;
  int32_t kv_blocks = 0;       // blocks of kv_block_size positions: ceil(n_ctx / kv_block_size)
  uint64_t kv_block_bytes = 0; // one block, K and V of every layer (before page rounding)
  uint64_t weights = 0;        // the weight store's budget
  uint64_t weights_min = 0;    // the store's minimum for these settings
  uint64_t weights_full = 0;   // the store's budget that keeps every weight resident
  uint64_t non_weights() const { return fixed + activations + kv; }
  std::string describe() const;  // one line: each term in MiB
};

constexpr uint64_t k_fixed_base = 8ull << 20;  // bytes: allocator arenas, runtime data, tensor table, slack
constexpr uint64_t k_fixed_per_token = 576;     // bytes per vocabulary entry: strings, scores, maps, parsed metadata

// The terms that do not depend on the budget (weights, weights_min and weights_full are filled; weights = 0).
// Errors: invalid_argument (n_ctx < 1, bad store settings), and the store's planning errors.
result<mem_budget_split> mem_budget_overhead(const model& m, const mem_budget_config& cfg);

// The split of cfg.budget. Errors: out_of_memory when the budget minus fixed, activations and the KV for n_ctx
// is below the weight store's minimum (the message gives each term and the smallest budget that works, and says
// a smaller context would need less); otherwise as mem_budget_overhead.
result<mem_budget_split> mem_budget_plan(const model& m, const mem_budget_config& cfg);

// The smallest budget mem_budget_plan accepts for cfg (cfg.budget ignored).
result<uint64_t> mem_budget_min(const model& m, const mem_budget_config& cfg);

// Drops the file's cached pages that no process maps (posix_fadvise DONTNEED). Loading a model faults its header
// in through the mapping, and the kernel reads ahead around it (read_ahead_kb: 8 MiB on this machine's disk); those
// pages sit in the page cache, charged to this process's memory cgroup, though nothing reads them again when the
// weights are streamed. Mapped pages (the parsed header) stay. Errors: io_error (open).
result<void> mem_budget_drop_file_cache(const std::string& path);

// This process's memory from /proc/self/status (bytes; all 0 where it cannot be read).
struct process_memory {
  uint64_t rss = 0;       // VmRSS: resident now (anonymous + file + shared memory)
  uint64_t peak_rss = 0;  // VmHWM: the highest VmRSS so far
  uint64_t rss_anon = 0;  // RssAnon
  uint64_t rss_file = 0;  // RssFile: mapped file pages (code, libraries, the model's header)
};
process_memory process_memory_read();

}  // namespace lime
