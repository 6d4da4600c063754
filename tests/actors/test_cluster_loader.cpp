// loader and layer_group under CAF's deterministic test coordinator, on a file-backed tiny model: a streamed group's
// weight store is built by the loader and handed over before prefetch_ready; memory pressure moves weight budget to
// the group's KV pool and back; a batch that finds the pool full waits for the loader instead of failing; outputs
// stay bitwise those of the plain forward pass throughout.
#include <gtest/gtest.h>

#include "actors/layer_group.h"
#include "actors/loader.h"
#include "runtime/node_budget.h"
#include "runtime/weight_plan.h"
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "tests/actors/deterministic_util.h"

namespace lime {
namespace {

using test::batch_frame;
using test::body_of;
using test::probe_log;
using test::ref_stage;
using test::same_bits;
using test::seq_rows;

test::tiny_spec spec() {
  test::tiny_spec s;
  s.n_vocab = 512;
  s.n_embd = 128;
  s.n_layer = 6;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 384;
  s.seed = 21;
  return s;
}

// The model in a temporary file (weight stores read the file), removed when this goes away.
struct model_file {
  std::string path;
  explicit model_file(const test::tiny_spec& s) {
    path = ::testing::TempDir() + "lime_loader_" + std::to_string(::getpid()) + ".gguf";
    test::tiny_model_builder b(s);
    const std::vector<uint8_t> bytes = b.build();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~model_file() { std::remove(path.c_str()); }
};

constexpr layer_range k_range{0, 4};
constexpr uint64_t k_epoch = 5;

class loader_group_test : public test::det_test {
 protected:
  model_file file{spec()};
  model m = std::move(model::load(file.path).value());
  vocab voc;
  std::shared_ptr<probe_log> node_log, kv_log;
  caf::actor node, kv, loader, group;
  loader_group_plan plan;
  ref_stage ref{m, k_range};

  node_context ctx() { return node_context{&m, &voc, nullptr, nullptr}; }
  uint64_t store_min() {
    weight_store_config sc;
    sc.range = k_range;
    return weight_plan_min_budget(m, weight_store::plan_config(m, sc)).value();
  }
  // The loader with a plan that streams [0, 4) under `budget` with a KV pool of `kv_blocks`, then the group.
  void start(uint64_t budget, int32_t kv_blocks) {
    node = spawn_probe(&node_log);
    kv = spawn_probe(&kv_log);
    loader_args la;
    la.ctx = ctx();
    la.node_name = "n1";
    la.kv_manager = kv;
    la.detached = false;
    loader = keep(spawn_loader(sys_, la));
    node_budget_config nc;
    plan = loader_group_plan{k_range.lo, k_range.hi, true, budget, store_min(), node_budget_kv_block_bytes(m, k_range, nc),
                             kv_blocks};
    tell(loader, loader_plan{k_epoch, {plan}});
    layer_group_args a;
    a.ctx = ctx();
    a.stage.range = k_range;
    a.stage.n_threads = 1;
    a.stage.kv_max_blocks = kv_blocks;
    a.epoch = k_epoch;
    a.node = node;
    a.loader = loader;
    a.kv_manager = kv;
    a.detached = false;
    group = keep(spawn_layer_group(sys_, a));
    run();
  }
  // Resident tensor bytes of the store's plan under `budget`.
  uint64_t plan_resident(uint64_t budget) {
    weight_store_config sc;
    sc.range = k_range;
    sc.budget = budget;
    auto p = weight_plan_make(m, weight_store::plan_config(m, sc));
    EXPECT_TRUE(p.ok());
    return p.ok() ? p->resident_bytes : 0;
  }
  uint64_t resident() {
    auto r = ask<uint64_t>(loader, kv_query_atom_v);
    return r ? std::get<0>(*r) : 0;
  }
  uint64_t kv_limit() const { return kv_log->kv_usage.empty() ? 0 : std::get<2>(kv_log->kv_usage.back()); }
  // Runs the batch through the group and checks its output against the plain forward pass.
  void expect_batch(uint64_t id, const micro_batch& b) {
    const size_t before = node_log->routed.size();
    inject(group, "head", batch_frame(id, 0, b, k_epoch, m.hparams().n_embd));
    ASSERT_EQ(node_log->routed.size(), before + 1);
    const auto* mb = body_of<msg::micro_batch_msg>(node_log->routed.back());
    ASSERT_NE(mb, nullptr) << msg::frame_kind(*node_log->routed.back());
    EXPECT_EQ(mb->batch_id, id);
    EXPECT_TRUE(same_bits(mb->batch.embd, ref.run(b).hidden)) << "batch " << id;
  }
  void pressure(uint64_t used, uint64_t limit, msg::pressure_level level) {
    inject(loader, "n1", make_frame_ptr(msg::memory_pressure{"n1", used, limit, level}));
  }
};

TEST_F(loader_group_test, a_streamed_group_gets_its_store_before_ready_and_computes_bitwise) {
  const uint64_t budget = store_min() + (512u << 10);
  start(budget, 4);
  ASSERT_EQ(node_log->group_up.size(), 1u);
  EXPECT_EQ(node_log->group_up[0], std::make_tuple(0, true, std::string()));
  const uint64_t weights = stage_weight_bytes(m, k_range);
  const uint64_t res = resident();
  EXPECT_GT(res, 0u);
  EXPECT_LT(res, weights / 2) << "the group's weights are streamed, not resident";
  EXPECT_LT(res, budget);
  // The kv_manager hears the weights: resident, and bytes streamed per token.
  ASSERT_FALSE(kv_log->weights.empty());
  EXPECT_EQ(kv_log->weights.back().first, res);
  EXPECT_GT(kv_log->weights.back().second, 0u);
  EXPECT_EQ(res, plan_resident(budget));
  expect_batch(1, seq_rows(1, 0, {5, 17, 29, 41, 53}, false));
  expect_batch(2, seq_rows(1, 5, {7}, false));
  EXPECT_EQ(node_log->unexpected + kv_log->unexpected, 0u);
}

TEST_F(loader_group_test, pressure_moves_weight_budget_to_kv_and_back_with_identical_outputs) {
  const uint64_t budget = store_min() + (1u << 20);
  start(budget, 2);
  const uint64_t block = plan.kv_block_bytes;
  ASSERT_LT(plan_resident(budget - 2 * block), plan_resident(budget)) << "two blocks' worth must change the plan";
  expect_batch(1, seq_rows(1, 0, {5, 17, 29}, false));
  ASSERT_EQ(kv_limit(), 2 * block);
  const uint64_t res0 = resident();
  EXPECT_EQ(res0, plan_resident(budget));

  // High: use at 95% of the pool -> the pool grows to hold it at k_kv_target (2 -> 4 blocks), the store gives the
  // same bytes back; its smaller plan is installed before the pool grows.
  pressure(2 * block * 95 / 100, 2 * block, msg::pressure_level::high);
  EXPECT_EQ(kv_limit(), 4 * block) << "the group's pool did not grow";
  EXPECT_EQ(resident(), plan_resident(budget - 2 * block)) << "the store kept its resident weights";
  expect_batch(2, seq_rows(1, 3, {41}, false));
  expect_batch(3, seq_rows(2, 0, {9, 10, 11, 12}, false));

  // While 2 blocks are in use the pool keeps room for them at the target fill (2 / 0.6 -> 4 blocks): nothing to free.
  pressure(2 * block, 4 * block, msg::pressure_level::normal);
  EXPECT_EQ(kv_limit(), 4 * block);
  // Sequence 2 ends; normal at the low watermark: the pool goes back to the split's 2 blocks, the store takes the
  // bytes back (installed at the next pass).
  inject(group, "head", make_frame_ptr(msg::seq_free{{2}}, k_epoch));
  pressure(block, 4 * block, msg::pressure_level::normal);
  EXPECT_EQ(kv_limit(), 2 * block);
  expect_batch(4, seq_rows(1, 4, {53}, false));
  EXPECT_EQ(resident(), res0) << "the weights were not taken back";
  EXPECT_EQ(node_log->unexpected + kv_log->unexpected, 0u);
}

TEST_F(loader_group_test, a_batch_that_finds_the_pool_full_waits_for_weight_budget) {
  start(store_min() + (1u << 20), 1);
  expect_batch(1, seq_rows(1, 0, {5, 17, 29}, false));
  ASSERT_EQ(kv_limit(), plan.kv_block_bytes);
  // A second sequence needs a second block: the group asks the loader, which gives weight budget, and the batch runs.
  // The batch behind it waits its turn.
  const size_t before = node_log->routed.size();
  inject(group, "head", batch_frame(2, 0, seq_rows(2, 0, {9, 10}, false), k_epoch, m.hparams().n_embd));
  ASSERT_EQ(node_log->routed.size(), before + 1);
  const auto* mb = body_of<msg::micro_batch_msg>(node_log->routed.back());
  ASSERT_NE(mb, nullptr) << msg::frame_kind(*node_log->routed.back());
  EXPECT_TRUE(same_bits(mb->batch.embd, ref.run(seq_rows(2, 0, {9, 10}, false)).hidden));
  EXPECT_GE(kv_limit(), 2 * plan.kv_block_bytes);
  expect_batch(3, seq_rows(1, 3, {41}, false));
}

TEST_F(loader_group_test, a_store_at_its_minimum_has_nothing_to_give_and_the_batch_fails) {
  start(store_min(), 1);
  expect_batch(1, seq_rows(1, 0, {5, 17, 29}, false));
  inject(group, "head", batch_frame(2, 0, seq_rows(2, 0, {9, 10}, false), k_epoch, m.hparams().n_embd));
  const auto* e = body_of<msg::error_report>(node_log->routed.back());
  ASSERT_NE(e, nullptr) << msg::frame_kind(*node_log->routed.back());
  EXPECT_EQ(e->code, "batch_failed");
  EXPECT_EQ(e->request_id, 2u);
  EXPECT_EQ(kv_limit(), plan.kv_block_bytes);
  expect_batch(3, seq_rows(1, 3, {41}, false));  // the group goes on
  pressure(plan.kv_block_bytes, plan.kv_block_bytes, msg::pressure_level::high);
  EXPECT_EQ(kv_limit(), plan.kv_block_bytes) << "nothing to give: the pool stays";
}

TEST_F(loader_group_test, a_group_the_plan_keeps_resident_gets_no_store) {
  node = spawn_probe(&node_log);
  kv = spawn_probe(&kv_log);
  loader_args la;
  la.ctx = ctx();
  la.detached = false;
  loader = keep(spawn_loader(sys_, la));
  tell(loader, loader_plan{k_epoch, {loader_group_plan{0, 4, false, 0, 0, 0, 8}}});
  layer_group_args a;
  a.ctx = ctx();
  a.stage.range = k_range;
  a.stage.n_threads = 1;
  a.stage.kv_max_blocks = 8;
  a.epoch = k_epoch;
  a.node = node;
  a.loader = loader;
  a.kv_manager = kv;
  a.detached = false;
  group = keep(spawn_layer_group(sys_, a));
  run();
  ASSERT_EQ(node_log->group_up.size(), 1u);
  EXPECT_EQ(resident(), stage_weight_bytes(m, k_range)) << "mapped and faulted in";
  expect_batch(1, seq_rows(1, 0, {5, 17, 29}, false));
}

}  // namespace
}  // namespace lime
