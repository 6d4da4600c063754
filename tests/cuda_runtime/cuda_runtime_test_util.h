// Helpers of the CUDA runtime tests: the skip without a device, a forward engine on a chosen backend with its own
// KV cache, logits of a sequence evaluated in chunks, tiny models written to files (the unified path reads them),
// and bitwise comparison that names the first differing element.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/ops.h"
#include "runtime/backend.h"
#include "runtime/cuda_forward.h"
#include "tests/tiny_model.h"

#define LIME_REQUIRE_CUDA()                                                           \
  do {                                                                                \
    if (::lime::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device present"; \
  } while (0)

namespace lime::test {

inline backend_options cuda_opts(uint64_t budget = 0, bool unified = false) {
  backend_options o;
  o.kind = backend_kind::cuda;
  o.device_budget = budget;
  o.unified = unified;
  return o;
}

inline backend_options cpu_opts() { return backend_options{}; }

// A forward engine over `r` on a backend of its own, with a KV cache from that backend.
struct engine {
  std::shared_ptr<backend> be;
  std::unique_ptr<thread_pool> pool;
  std::unique_ptr<kv_cache> kv;
  std::unique_ptr<forward_engine> fwd;
  status st;  // why it could not be built

  engine(const model& m, layer_range r, const backend_options& o, weight_source* src = nullptr,
         tensor_type kv_type = tensor_type::f32, int32_t max_blocks = 64, int32_t max_batch = 64, int threads = 2) {
    auto b = make_backend(o);
    if (!b.ok()) { st = b.err(); return; }
    be = b.value();
    pool = std::make_unique<thread_pool>(threads);
    kv_cache_config c;
    c.n_layer = r.hi - r.lo;
    c.row_elems = m.hparams().n_embd_kv();
    c.type = kv_type;
    c.block_size = 16;
    c.max_blocks = max_blocks;
    c.allocator = be->kv_allocator();
    auto k = kv_cache::create(c);
    if (!k.ok()) { st = k.err(); return; }
    kv = std::make_unique<kv_cache>(std::move(k.value()));
    forward_engine_args a;
    a.m = &m;
    a.range = r;
    a.kv = kv.get();
    a.pool = pool.get();
    a.weights = src;
    a.max_batch = max_batch;
    a.max_logit_rows = max_batch;
    auto f = be->make_forward(a);
    if (!f.ok()) { st = f.err(); return; }
    fwd = std::move(f.value());
  }
  bool ok() const { return fwd != nullptr; }
  const cuda_weights_stats* weight_stats() const {
    auto* c = dynamic_cast<const cuda_forward*>(fwd.get());
    return c ? &c->weight_stats() : nullptr;
  }
};

inline std::vector<int32_t> tokens_for(int32_t seed, int n, int32_t n_vocab) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((seed * 31 + i * 17 + 5) % n_vocab));
  return t;
}

// Logits of every position of sequence `seq`, evaluated in chunks of `chunk` tokens (empty on error, reported).
inline std::vector<float> logits_all(engine& e, const std::vector<int32_t>& toks, size_t chunk, int32_t seq = 0) {
  std::vector<float> all;
  micro_batch b;
  forward_output out;
  for (size_t s = 0; s < toks.size(); s += chunk) {
    b.clear();
    for (size_t i = s; i < std::min(toks.size(), s + chunk); ++i) b.add(toks[i], static_cast<int32_t>(i), seq, true);
    auto r = e.fwd->run(b, out);
    EXPECT_TRUE(r.ok()) << r.err().message;
    if (!r.ok()) return {};
    all.insert(all.end(), out.logits.begin(), out.logits.end());
  }
  return all;
}

// Empty when equal bit for bit, else where and how they differ.
inline std::string bit_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return "sizes differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t x, y;
    std::memcpy(&x, &a[i], 4);
    std::memcpy(&y, &b[i], 4);
    if (x != y) return "first difference at " + std::to_string(i) + ": " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
  }
  return "";
}

// A tiny model written to a file (removed when this goes away) and loaded from it.
struct model_on_disk {
  std::string path;
  std::unique_ptr<model> m;
  explicit model_on_disk(const tiny_spec& s, const std::string& tag) {
    path = ::testing::TempDir() + "lime_cudart_" + std::to_string(::getpid()) + "_" + tag + ".gguf";
    tiny_model_builder b(s);
    std::vector<uint8_t> bytes = b.build();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.close();
    auto l = model::load(path);
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.err().message);
    if (l.ok()) m = std::make_unique<model>(std::move(l.value()));
  }
  ~model_on_disk() { std::remove(path.c_str()); }
  model_on_disk(const model_on_disk&) = delete;
  model_on_disk& operator=(const model_on_disk&) = delete;
};

// A model large enough that a small device budget forces streaming, with a head bigger than a layer (split blocks).
inline tiny_spec streaming_spec(tensor_type t = tensor_type::f32) {
  tiny_spec s;
  s.n_vocab = 4096;
  s.n_embd = 128;
  s.n_layer = 6;
  s.n_head = 8;
  s.n_head_kv = 2;
  s.n_ff = 384;
  s.type = t;
  return s;
}

}  // namespace lime::test
