// lime-bench offload: generation speed of a model whose weights do not fit the budget, per budget and loading
// policy (runtime/weight_store.h), against a plain-mmap baseline under a cgroup memory cap and the storage bound.
// Prints figures; asserts nothing.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "runtime/result.h"

namespace lime {

struct bench_offload_options {
  std::string model_path;
  std::vector<std::string> budgets;  // "75%" (of the weight bytes) or a size ("384M", "2G", bytes); empty: 100,75,50,25%
  int n_threads = 0;                 // 0: all online CPUs
  int32_t n_gen = 16;                // timed tokens per run (after one untimed warm-up token)
  int32_t reps = 3;                  // runs per configuration (interleaved); the median is shown
  int32_t io_threads = 2;
  int32_t ring_depth = 0;            // 0: automatic
  bool mmap_baseline = true;         // needs a writable memory cgroup (root); skipped with a note otherwise
  bool ablation = true;              // also run lime without tensor preservation
  uint64_t bw_probe_bytes = 512ull << 20;  // O_DIRECT bandwidth probe (capped at the file size)
};

// Parses "75%" (percent of `whole`) or a binary size ("384M", "2G", "512K", a byte count).
result<uint64_t> parse_budget(const std::string& s, uint64_t whole);

// Errors: those of model::load; invalid_argument (bad budget text).
status bench_offload(const bench_offload_options& o, FILE* out);

// --- internal to the benchmark (bench_offload.cpp, bench_offload_mmap.cpp)

class model;
class weight_source;
struct decode_hooks {
  std::function<void()> before_warmup;  // after the pool, KV and forward pass exist
  std::function<void()> after_warmup;
};
// One untimed warm-up token, then n_gen greedy one-token decode steps on a fresh KV cache; returns their seconds.
result<double> bench_offload_decode(const model& m, weight_source* src, int n_threads, int32_t n_gen, double* warmup_s,
                                    const decode_hooks* hooks = nullptr);

struct mmap_run {
  bool ran = false;
  std::string note;             // why it did not run, or how it ended ("OOM-killed")
  double tokens_per_s = 0;
  double read_bytes_per_token = 0;  // from /proc/self/io read_bytes (storage reads incl. readahead)
};
// Runs the model through lime's own mmap path (no weight store) in a child process inside a fresh memory cgroup
// capped at the child's memory before the first token + `budget`, with the file dropped from the page cache.
mmap_run bench_offload_mmap(const std::string& path, uint64_t budget, int n_threads, int32_t n_gen);

}  // namespace lime
