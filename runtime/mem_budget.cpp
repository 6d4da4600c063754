// The process memory budget split (fixed / activations / KV / weights) and the /proc/self/status reader.
#include "runtime/mem_budget.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kernels/cpu/attention.h"
#include "runtime/forward.h"

namespace lime {
namespace {

std::string mib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof(s), "%.1f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return s;
}

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

}  // namespace

std::string mem_budget_split::describe() const {
  return "budget " + mib(budget) + " = weights " + mib(weights) + " (minimum " + mib(weights_min) + ", all resident " +
         mib(weights_full) + ") + kv " + mib(kv) + " (" + std::to_string(kv_blocks) + " blocks) + activations " +
         mib(activations) + " + fixed " + mib(fixed);
}

result<mem_budget_split> mem_budget_overhead(const model& m, const mem_budget_config& cfg) {
  const model_hparams& hp = m.hparams();
  if (cfg.n_ctx < 1) return make_error(errc::invalid_argument, "memory budget: the context size must be positive");
  if (cfg.kv_block_size < 1) return make_error(errc::invalid_argument, "memory budget: the KV block size must be positive");
  if (cfg.kv_type != tensor_type::f32 && cfg.kv_type != tensor_type::f16)
    return make_error(errc::invalid_argument, "memory budget: the KV type must be f32 or f16");
  mem_budget_split s;
  s.budget = cfg.budget;
  const uint64_t page = page_bytes();
  const uint64_t f = sizeof(float);

  // --- fixed: header pages + parsed metadata, vocabulary and tokenizer tables, base
  const uint64_t header = round_up(m.file().data_offset(), page);
  s.fixed = k_fixed_base + 2 * header + static_cast<uint64_t>(hp.n_vocab) * k_fixed_per_token;

  // --- activations: forward scratch for the largest batch, per-thread attention scratch, logits, sampler
  const uint64_t n = static_cast<uint64_t>(std::max(1, std::min(cfg.n_batch, cfg.n_ctx)));
  const uint64_t per_token = static_cast<uint64_t>(forward_token_scratch_floats(hp)) * f;
  const uint64_t threads = static_cast<uint64_t>(std::max(1, cfg.n_threads));
  const uint64_t n_blocks = (static_cast<uint64_t>(cfg.n_ctx) + static_cast<uint64_t>(cfg.kv_block_size) - 1) /
                            static_cast<uint64_t>(cfg.kv_block_size);
  const uint64_t attn = threads * (static_cast<uint64_t>(cpu::attention_scratch_floats(hp.head_dim)) * f +
                                   2 * n_blocks * sizeof(void*));
  const uint64_t batch_arrays = n * (3 * sizeof(int32_t) + 1);  // micro_batch: tokens, pos, seq, want_logits
  const uint64_t logits = 6 * static_cast<uint64_t>(hp.n_vocab) * f;  // forward output + session copy + 4 sampler arrays
  const uint64_t matmul_scratch = forward_matmul_scratch_bytes(hp, n, cfg.n_threads);
  s.activations = round_up(n * per_token + attn + batch_arrays + logits + matmul_scratch, page);

  // --- kv: every block rounded to pages (each is its own allocation, mapped on its own)
  const uint64_t elem = cfg.kv_type == tensor_type::f32 ? 4 : 2;
  s.kv_block_bytes = 2ull * static_cast<uint64_t>(hp.n_layer) * static_cast<uint64_t>(cfg.kv_block_size) *
                     static_cast<uint64_t>(hp.n_embd_kv()) * elem;
  s.kv_blocks = static_cast<int32_t>(n_blocks);
  s.kv = n_blocks * round_up(s.kv_block_bytes, page);

  // --- weights: the store's bounds for every layer
  weight_store_config sc = cfg.store;
  sc.range = layer_range{0, hp.n_layer};
  const weight_plan_config pc = weight_store::plan_config(m, sc);
  LIME_TRY(s.weights_min, weight_plan_min_budget(m, pc));
  s.weights_full = weight_plan_resident_budget(m, pc);
  return s;
}

result<mem_budget_split> mem_budget_plan(const model& m, const mem_budget_config& cfg) {
  LIME_TRY(mem_budget_split s, mem_budget_overhead(m, cfg));
  const uint64_t need = s.non_weights() + s.weights_min;
  if (cfg.budget < need) {
    return make_error(errc::out_of_memory,
                      "memory budget " + mib(cfg.budget) + " is too small: at least " + mib(need) + " (" +
                          std::to_string(need) + " bytes) is needed for this model with a context of " +
                          std::to_string(cfg.n_ctx) + " (weights: streaming ring minimum " + mib(s.weights_min) +
                          ", kv " + mib(s.kv) + ", activations " + mib(s.activations) + ", fixed " + mib(s.fixed) +
                          "); a smaller context (-c) needs less KV");
  }
  s.weights = cfg.budget - s.non_weights();
  return s;
}

result<uint64_t> mem_budget_min(const model& m, const mem_budget_config& cfg) {
  LIME_TRY(mem_budget_split s, mem_budget_overhead(m, cfg));
  return s.non_weights() + s.weights_min;
}

result<void> mem_budget_drop_file_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io_error, "cannot open '" + path + "': " + std::strerror(errno));
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // advice: failing to drop only costs memory
  ::close(fd);
  return {};
}

process_memory process_memory_read() {
  process_memory pm;
  std::ifstream f("/proc/self/status");
  std::string line;
  auto field = [&line](const char* key, uint64_t* out) {
    const size_t len = std::strlen(key);
    if (line.compare(0, len, key) != 0) return;
    std::istringstream is(line.substr(len));
    uint64_t kb = 0;
    if (is >> kb) *out = kb * 1024;  // the kernel writes "kB" (KiB)
  };
  while (std::getline(f, line)) {
    field("VmRSS:", &pm.rss);
    field("VmHWM:", &pm.peak_rss);
    field("RssAnon:", &pm.rss_anon);
    field("RssFile:", &pm.rss_file);
  }
  return pm;
}

}  // namespace lime
