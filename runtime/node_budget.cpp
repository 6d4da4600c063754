// A node's budget split (weights resident or streamed / KV / activations) and the bytes placement asks of a range.
#include "runtime/node_budget.h"

#include <algorithm>
#include <cstdio>

#include "kernels/cpu/attention.h"
#include "runtime/forward.h"
#include "runtime/stage.h"
#include "runtime/weight_plan.h"

namespace lime {
namespace {

constexpr int32_t k_max_kv_blocks = 1 << 20;  // "no limit"

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

weight_plan_config plan_config_for(const model& m, layer_range r, const node_budget_config& cfg) {
  weight_store_config sc = cfg.store;
  sc.range = r;
  return weight_store::plan_config(m, sc);
}

uint64_t kv_reserve_bytes(const model& m, layer_range r, const node_budget_config& cfg) {
  return static_cast<uint64_t>(node_budget_kv_reserve_blocks(cfg)) * node_budget_kv_block_bytes(m, r, cfg);
}

// The resident split: weights as mapped pages, the KV pools share what weights and activations leave, by layers.
void split_resident(const node_budget_config& cfg, node_budget_split* s) {
  uint64_t used = 0;
  int32_t layers = 0;
  for (node_group_budget& g : s->groups) {
    g.streamed = false;
    g.store_budget = g.store_min = 0;
    used += g.weight_bytes + g.activations;
    layers += g.range.hi - g.range.lo;
  }
  const uint64_t kv_total = cfg.budget > used ? cfg.budget - used : 0;
  s->weights = s->kv = 0;
  for (node_group_budget& g : s->groups) {
    if (cfg.budget == 0) {
      g.kv_blocks = k_max_kv_blocks;
    } else {
      const uint64_t share = kv_total / static_cast<uint64_t>(layers) * static_cast<uint64_t>(g.range.hi - g.range.lo);
      g.kv_blocks = static_cast<int32_t>(std::clamp<uint64_t>(share / g.kv_block_bytes, 1, k_max_kv_blocks));
    }
    s->weights += g.weight_bytes;
    s->kv += g.kv_bytes();
  }
}

std::string mib(uint64_t b) {
  char t[32];
  std::snprintf(t, sizeof(t), "%.1f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return t;
}

}  // namespace

std::string node_budget_split::describe() const {
  std::string s = budget ? "budget " + mib(budget) + " = " : std::string("no budget: ");
  s += "weights " + mib(weights) + (streamed ? " (weight stores)" : " (mapped)") + " + KV " + mib(kv) + " + activations " +
       mib(activations);
  if (over) s += "; over the budget: streaming these layers needs at least " + mib(need);
  return s;
}

uint64_t node_budget_activations(const model& m, layer_range r, const node_budget_config& cfg) {
  const model_hparams& hp = m.hparams();
  const uint64_t f = sizeof(float);
  const uint64_t rows = static_cast<uint64_t>(std::max(1, cfg.n_rows));
  // Forward scratch (forward_token_scratch_floats, runtime/mem_budget.h's per-token term) plus the stage's hidden
  // output and the micro-batches in and out (decoded / encoded): 3 more n_embd.
  const uint64_t per_row = static_cast<uint64_t>(forward_token_scratch_floats(hp) + 3 * hp.n_embd) * f;
  const uint64_t attn = static_cast<uint64_t>(std::max(1, cfg.n_threads)) *
                        static_cast<uint64_t>(cpu::attention_scratch_floats(hp.head_dim)) * f;
  uint64_t a = rows * per_row + attn + rows * (3 * sizeof(int32_t) + 1) + forward_matmul_scratch_bytes(hp, rows, cfg.n_threads);
  if (r.hi == hp.n_layer)  // logits of the sampled rows, the eog-masked copy and the sampler's arrays
    a += static_cast<uint64_t>(std::max(1, cfg.n_logit_rows) + 5) * static_cast<uint64_t>(hp.n_vocab) * f;
  return round_up(a, page_bytes());
}

uint64_t node_budget_kv_block_bytes(const model& m, layer_range r, const node_budget_config& cfg) {
  const uint64_t elem = cfg.kv_type == tensor_type::f16 ? 2 : 4;
  return 2ull * static_cast<uint64_t>(r.hi - r.lo) * static_cast<uint64_t>(cfg.kv_block_size) *
         static_cast<uint64_t>(m.hparams().n_embd_kv()) * elem;
}

int32_t node_budget_kv_reserve_blocks(const node_budget_config& cfg) {
  return std::max(1, (cfg.kv_reserve_positions + cfg.kv_block_size - 1) / std::max(1, cfg.kv_block_size));
}

uint64_t node_budget_range_need(const model& m, layer_range r, const node_budget_config& cfg) {
  const uint64_t kv = kv_reserve_bytes(m, r, cfg);
  const uint64_t resident = stage_weight_bytes(m, r) + kv;
  const uint64_t floor = weight_plan_floor_budget(m, plan_config_for(m, r, cfg));
  if (floor == 0) return resident;
  return std::min(resident, floor + kv + node_budget_activations(m, r, cfg));
}

result<node_budget_split> node_budget_plan(const model& m, const std::vector<layer_range>& groups,
                                           const node_budget_config& cfg) {
  const int32_t n_layer = m.hparams().n_layer;
  if (cfg.kv_block_size < 1) return make_error(errc::invalid_argument, "node budget: the KV block size must be positive");
  node_budget_split s;
  s.budget = cfg.budget;
  uint64_t weights = 0, reserve = 0;
  for (const layer_range& r : groups) {
    if (r.lo < 0 || r.hi > n_layer || r.lo >= r.hi)
      return make_error(errc::invalid_argument, "node budget: layer group " + std::to_string(r.lo) + "-" + std::to_string(r.hi) +
                                                    " is empty or outside the model's " + std::to_string(n_layer) + " layers");
    node_group_budget g;
    g.range = r;
    g.weight_bytes = stage_weight_bytes(m, r);
    g.activations = node_budget_activations(m, r, cfg);
    g.kv_block_bytes = node_budget_kv_block_bytes(m, r, cfg);
    weights += g.weight_bytes;
    reserve += kv_reserve_bytes(m, r, cfg);
    s.activations += g.activations;
    s.groups.push_back(g);
  }
  // --- no budget (or everything fits and mapped pages are wanted): the resident path
  if (cfg.budget == 0 || (cfg.mapped_when_fits && weights + reserve + s.activations <= cfg.budget)) {
    split_resident(cfg, &s);
    return s;
  }
  // --- stores: every group gets its store's minimum, the rest by weight bytes up to all-resident (when the budget
  // holds everything, every store is all-resident and the KV pools get what is left)
  uint64_t mins = 0;
  std::vector<uint64_t> full(s.groups.size());
  for (size_t i = 0; i < s.groups.size(); ++i) {
    node_group_budget& g = s.groups[i];
    const weight_plan_config pc = plan_config_for(m, g.range, cfg);
    LIME_TRY(g.store_min, weight_plan_min_budget(m, pc));
    full[i] = std::max(g.store_min, weight_plan_resident_budget(m, pc));
    mins += g.store_min;
  }
  s.need = reserve + s.activations + mins;
  if (cfg.budget < s.need) {
    s.over = true;
    split_resident(cfg, &s);
    return s;
  }
  uint64_t left = cfg.budget - s.need;
  std::vector<bool> capped(s.groups.size(), false);
  for (size_t i = 0; i < s.groups.size(); ++i) s.groups[i].store_budget = s.groups[i].store_min;
  for (bool moved = true; moved && left > 0;) {
    moved = false;
    uint64_t open_bytes = 0;
    for (size_t i = 0; i < s.groups.size(); ++i)
      if (!capped[i]) open_bytes += s.groups[i].weight_bytes;
    if (open_bytes == 0) break;
    const uint64_t pool = left;
    for (size_t i = 0; i < s.groups.size() && left > 0; ++i) {
      if (capped[i]) continue;
      node_group_budget& g = s.groups[i];
      const uint64_t want = static_cast<uint64_t>(static_cast<unsigned __int128>(pool) * g.weight_bytes / open_bytes);
      const uint64_t give = std::min({want, full[i] - g.store_budget, left});
      g.store_budget += give;
      left -= give;
      moved |= give > 0;
      if (g.store_budget >= full[i]) capped[i] = true, moved = true;
    }
  }
  // --- KV: the reserve, plus what the stores could not use (by layers)
  int32_t layers = 0;
  for (const node_group_budget& g : s.groups) layers += g.range.hi - g.range.lo;
  s.streamed = true;
  s.weights = s.kv = 0;
  for (node_group_budget& g : s.groups) {
    const uint64_t extra = left / static_cast<uint64_t>(layers) * static_cast<uint64_t>(g.range.hi - g.range.lo);
    g.streamed = true;
    g.kv_blocks = static_cast<int32_t>(std::min<uint64_t>(
        static_cast<uint64_t>(node_budget_kv_reserve_blocks(cfg)) + extra / g.kv_block_bytes, k_max_kv_blocks));
    s.weights += g.store_budget;
    s.kv += g.kv_bytes();
  }
  return s;
}

}  // namespace lime
