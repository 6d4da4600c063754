// Helpers for the weight store tests: tiny random models written to temporary files, greedy generation through a
// forward pass with or without a weight source, and bitwise comparison of the logits of every step.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "runtime/forward.h"
#include "runtime/weight_store.h"
#include "tests/tiny_model.h"

namespace lime::test {

// A model file in the temporary directory, removed when this goes away.
struct model_file {
  std::string path;
  explicit model_file(const tiny_spec& s, const std::string& tag) {
    path = ::testing::TempDir() + "lime_ws_" + std::to_string(::getpid()) + "_" + tag + ".gguf";
    tiny_model_builder b(s);
    std::vector<uint8_t> bytes = b.build();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~model_file() { std::remove(path.c_str()); }
  model_file(const model_file&) = delete;
  model_file& operator=(const model_file&) = delete;
};

struct generation {
  std::vector<int32_t> tokens;  // the prompt followed by the generated tokens
  std::vector<float> logits;    // [steps, n_vocab]: the last prompt position's row, then each decode step's
  status st;                    // the first error, if any
};

// Called before decode step `step` (0-based), for mid-generation changes.
using step_hook = std::function<void(int step)>;

// Prefills `prompt` in one batch, then decodes n_gen tokens greedily (argmax, lowest id on ties).
inline generation generate_greedy(const model& m, const std::vector<int32_t>& prompt, int n_gen, int threads,
                                  weight_source* src = nullptr, const step_hook& hook = {}) {
  generation g;
  const model_hparams& hp = m.hparams();
  thread_pool pool(threads);
  kv_cache_config c;
  c.n_layer = hp.n_layer;
  c.row_elems = hp.n_embd_kv();
  c.block_size = 16;
  c.max_blocks = 64;
  auto kv = kv_cache::create(c);
  if (!kv) {
    g.st = kv.err();
    return g;
  }
  forward_pass fwd(m, {0, hp.n_layer}, kv.value(), pool, src);
  micro_batch b;
  forward_output out;
  g.tokens = prompt;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, i + 1 == prompt.size());
  for (int step = 0; step <= n_gen; ++step) {
    if (step > 0) {
      if (hook) hook(step - 1);
      b.clear();
      b.add(g.tokens.back(), static_cast<int32_t>(g.tokens.size() - 1), 0, true);
    }
    g.st = fwd.run(b, out);
    if (!g.st.ok()) return g;
    g.logits.insert(g.logits.end(), out.logits.begin(), out.logits.end());
    if (step == n_gen) break;
    int32_t best = 0;
    for (int32_t v = 1; v < hp.n_vocab; ++v)
      if (out.logits[static_cast<size_t>(v)] > out.logits[static_cast<size_t>(best)]) best = v;
    g.tokens.push_back(best);
  }
  return g;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline std::vector<int32_t> prompt_for(int n, int32_t n_vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(static_cast<int32_t>((i * 37 + 11) % n_vocab));
  return p;
}

inline weight_store_config store_cfg(uint64_t budget, weight_policy p) {
  weight_store_config c;
  c.budget = budget;
  c.policy = p;
  c.lock_memory = false;  // tests run as any user; locking is exercised where permitted by lock_memory = true
  return c;
}

inline uint64_t percent_of(uint64_t bytes, int pct) { return bytes * static_cast<uint64_t>(pct) / 100; }

}  // namespace lime::test
