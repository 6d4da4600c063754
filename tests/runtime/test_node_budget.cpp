// A node's budget: the KV pool limit moving at run time (kv_cache, pipeline_stage), the weight store's floor for many
// ranges (weight_plan_floor_budget), the node's split (resident / streamed / over) and the placement that counts the
// streaming minimum (place_by_budget with range_bytes).
#include <gtest/gtest.h>

#include "runtime/node_budget.h"
#include "runtime/placement.h"
#include "runtime/stage.h"
#include "runtime/vocab.h"
#include "runtime/weight_plan.h"
#include "tests/runtime/weight_store_test_util.h"

namespace lime {
namespace {

// 12 layers of n_embd 128 / n_ff 384 (f32, ~0.6 MiB each): the layers dominate, so streaming needs far less than
// the weights.
test::tiny_spec wide_spec() {
  test::tiny_spec s;
  s.n_vocab = 512;
  s.n_embd = 128;
  s.n_layer = 12;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 384;
  s.seed = 3;
  return s;
}

// The greedy token of the batch's last row from a plain forward pass over every layer (its own KV).
int32_t reference_greedy(const model& m, const micro_batch& b) {
  const model_hparams& hp = m.hparams();
  thread_pool pool(1);
  kv_cache_config c;
  c.n_layer = hp.n_layer;
  c.row_elems = hp.n_embd_kv();
  c.block_size = 32;
  c.max_blocks = 16;
  auto kv = kv_cache::create(c);
  EXPECT_TRUE(kv.ok());
  forward_pass fwd(m, {0, hp.n_layer}, kv.value(), pool);
  forward_output out;
  EXPECT_TRUE(fwd.run(b, out).ok());
  int32_t best = 0;
  for (int32_t v = 1; v < hp.n_vocab; ++v)
    if (out.logits[static_cast<size_t>(v)] > out.logits[static_cast<size_t>(best)]) best = v;
  return best;
}

class node_budget_test : public ::testing::Test {
 protected:
  test::model_file file{wide_spec(), "node_budget"};
  model m = std::move(model::load(file.path).value());
  node_budget_config cfg() const {
    node_budget_config c;
    c.n_rows = 64;
    c.n_logit_rows = 8;
    c.n_threads = 1;
    return c;
  }
  weight_plan_config plan_cfg(layer_range r) const {
    weight_store_config sc;
    sc.range = r;
    return weight_store::plan_config(m, sc);
  }
};

TEST(kv_cache_limit, raising_lowering_and_releasing_free_blocks) {
  kv_cache_config c;
  c.n_layer = 2;
  c.row_elems = 8;
  c.block_size = 4;
  c.max_blocks = 2;
  auto kv = kv_cache::create(c);
  ASSERT_TRUE(kv.ok());
  ASSERT_TRUE(kv->reserve(1, 8).ok());  // 2 blocks: the pool is full
  EXPECT_EQ(kv->reserve(2, 1).err().code, errc::out_of_memory);
  ASSERT_TRUE(kv->set_max_blocks(4).ok());
  ASSERT_TRUE(kv->reserve(2, 8).ok());
  EXPECT_EQ(kv->blocks_in_use(), 4);
  EXPECT_EQ(kv->blocks_allocated(), 4);
  EXPECT_EQ(kv->set_max_blocks(3).err().code, errc::invalid_argument) << "below the blocks in use";
  EXPECT_EQ(kv->config().max_blocks, 4);
  kv->release(2);
  EXPECT_EQ(kv->blocks_allocated(), 4) << "free blocks keep their memory for reuse";
  ASSERT_TRUE(kv->set_max_blocks(2).ok());
  EXPECT_EQ(kv->blocks_allocated(), 2) << "lowering the limit releases the free blocks beyond it";
  EXPECT_EQ(kv->blocks_free(), 0);
  ASSERT_TRUE(kv->set_max_blocks(3).ok());
  ASSERT_TRUE(kv->reserve(3, 4).ok());  // a released block comes back with fresh memory
  EXPECT_EQ(kv->blocks_allocated(), 3);
  EXPECT_NE(kv->k_row(1, 3, 3), nullptr);
  EXPECT_EQ(kv->set_max_blocks(0).err().code, errc::invalid_argument);
}

TEST_F(node_budget_test, a_stage_whose_pool_grows_between_runs_stays_bitwise_identical) {
  const model_hparams& hp = m.hparams();
  stage_config sc;
  sc.range = {0, hp.n_layer};
  sc.n_threads = 1;
  sc.kv_block_size = 32;
  sc.kv_max_blocks = 1;
  vocab voc;
  auto st = pipeline_stage::create(m, voc, sc);
  ASSERT_TRUE(st.ok()) << st.err().message;
  micro_batch b;
  for (int32_t i = 0; i < 40; ++i) b.add(i % hp.n_vocab, i, 1, i == 39);
  std::vector<sampled_row> out;
  sampling_params greedy;
  greedy.temperature = 0;
  const std::vector<row_sampling> rs = {row_sampling{greedy, 0, {}, false}};
  auto r = (*st)->run(b, rs, nullptr, &out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::out_of_memory) << "40 positions need 2 blocks";
  EXPECT_EQ((*st)->kv_blocks_in_use(), 0) << "a refused batch reserves nothing";
  ASSERT_TRUE((*st)->set_kv_max_blocks(2).ok());
  EXPECT_EQ((*st)->kv_blocks_limit(), 2);
  ASSERT_TRUE((*st)->run(b, rs, nullptr, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].token, reference_greedy(m, b));
  EXPECT_EQ((*st)->set_kv_max_blocks(1).err().code, errc::invalid_argument);
  (*st)->release(1);
  ASSERT_TRUE((*st)->set_kv_max_blocks(1).ok());
}

TEST_F(node_budget_test, the_floor_is_accepted_and_close_to_the_minimum_for_every_kind_of_range) {
  const int32_t n = m.hparams().n_layer;
  for (layer_range r : {layer_range{0, 1}, layer_range{0, 5}, layer_range{3, 7}, layer_range{5, 6}, layer_range{7, n},
                        layer_range{n - 1, n}, layer_range{0, n}}) {
    SCOPED_TRACE(std::to_string(r.lo) + "-" + std::to_string(r.hi));
    weight_plan_config pc = plan_cfg(r);
    const uint64_t floor = weight_plan_floor_budget(m, pc);
    auto min = weight_plan_min_budget(m, pc);
    ASSERT_TRUE(min.ok()) << min.err().message;
    EXPECT_GE(floor, min.value());
    EXPECT_LE(floor, min.value() + 16 * page_bytes()) << "the floor should be about the minimum";
    pc.budget = floor;
    auto plan = weight_plan_make(m, pc);
    ASSERT_TRUE(plan.ok()) << plan.err().message;
    EXPECT_LE(plan->total_alloc, floor);
    if (r.hi - r.lo >= 2) {
      EXPECT_LT(floor, stage_weight_bytes(m, r)) << "streaming needs less than the weights";
    }
  }
  EXPECT_EQ(weight_plan_floor_budget(m, plan_cfg(layer_range{3, 3})), 0u);
}

TEST_F(node_budget_test, splits_resident_streamed_and_over) {
  const int32_t n = m.hparams().n_layer;
  const std::vector<layer_range> groups = {{0, 4}, {8, n}};
  uint64_t weights = 0;
  for (const auto& g : groups) weights += stage_weight_bytes(m, g);

  node_budget_config c = cfg();
  auto none = node_budget_plan(m, groups, c);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->streamed);
  EXPECT_EQ(none->groups[0].kv_blocks, 1 << 20);

  c.budget = weights * 2;  // everything fits, mapped pages asked for: resident, the KV pools share what is left
  c.mapped_when_fits = true;
  auto big = node_budget_plan(m, groups, c);
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE(big->streamed);
  EXPECT_EQ(big->weights, weights);
  EXPECT_LE(big->weights + big->kv + big->activations, c.budget);
  EXPECT_GT(big->groups[0].kv_blocks, node_budget_kv_reserve_blocks(c));
  std::printf("resident: %s\n", big->describe().c_str());
  // The default with a budget: the same fit held by all-resident stores (nothing streamed per token), so KV pressure
  // can take weight budget; the KV pools get about what the mapped split gave them.
  c.mapped_when_fits = false;
  auto stores = node_budget_plan(m, groups, c);
  ASSERT_TRUE(stores.ok());
  EXPECT_TRUE(stores->streamed);
  EXPECT_LE(stores->weights + stores->kv + stores->activations, c.budget);
  for (size_t i = 0; i < groups.size(); ++i) {
    const node_group_budget& g = stores->groups[i];
    weight_store_config sc;
    sc.range = g.range;
    sc.budget = g.store_budget;
    auto plan = weight_plan_make(m, weight_store::plan_config(m, sc));
    ASSERT_TRUE(plan.ok());
    EXPECT_EQ(plan->streamed_per_pass, 0u) << "layers " << g.range.lo << "-" << g.range.hi << " stream with room to spare";
    EXPECT_GT(g.kv_blocks, big->groups[i].kv_blocks / 2);
  }
  std::printf("stores:   %s\n", stores->describe().c_str());

  c.budget = weights * 7 / 10;  // 70% of the weights (+ KV + activations do not fit): streamed
  auto part = node_budget_plan(m, groups, c);
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE(part->streamed);
  EXPECT_FALSE(part->over);
  std::printf("streamed: %s\n", part->describe().c_str());
  EXPECT_LE(part->weights + part->kv + part->activations, c.budget);
  EXPECT_GE(part->weights + part->kv + part->activations, c.budget - 2 * part->groups[0].kv_block_bytes);
  for (const node_group_budget& g : part->groups) {
    EXPECT_TRUE(g.streamed);
    EXPECT_GE(g.store_budget, g.store_min);
    EXPECT_EQ(g.kv_blocks, node_budget_kv_reserve_blocks(c));
    weight_store_config sc;
    sc.range = g.range;
    sc.budget = g.store_budget;
    EXPECT_TRUE(weight_plan_make(m, weight_store::plan_config(m, sc)).ok());
  }
  // The groups' stores share what is above their minimums in proportion to their weights.
  const double extra0 = static_cast<double>(part->groups[0].store_budget - part->groups[0].store_min);
  const double extra1 = static_cast<double>(part->groups[1].store_budget - part->groups[1].store_min);
  const double w0 = static_cast<double>(part->groups[0].weight_bytes), w1 = static_cast<double>(part->groups[1].weight_bytes);
  EXPECT_NEAR(extra0 / (extra0 + extra1), w0 / (w0 + w1), 0.01);

  c.budget = part->need - 1;  // below the streaming minimum: resident and over, with the smallest budget that streams
  auto over = node_budget_plan(m, groups, c);
  ASSERT_TRUE(over.ok());
  EXPECT_TRUE(over->over);
  EXPECT_FALSE(over->streamed);
  EXPECT_EQ(over->need, part->need);
  c.budget = part->need;
  auto at_min = node_budget_plan(m, groups, c);
  ASSERT_TRUE(at_min.ok());
  EXPECT_TRUE(at_min->streamed);
  EXPECT_FALSE(at_min->over);

  EXPECT_EQ(node_budget_plan(m, {{4, 4}}, c).err().code, errc::invalid_argument);
}

TEST_F(node_budget_test, placement_counts_the_streaming_minimum) {
  const int32_t n = m.hparams().n_layer;
  const node_budget_config c = cfg();
  const uint64_t kv_reserve = node_budget_kv_block_bytes(m, {0, 1}, c) * static_cast<uint64_t>(node_budget_kv_reserve_blocks(c));
  model_footprint resident = footprint_of(m, kv_reserve);
  model_footprint streaming = resident;
  streaming.range_bytes = [&](int32_t lo, int32_t hi) { return node_budget_range_need(m, layer_range{lo, hi}, c); };
  // The need is never above the resident footprint (the placement before streaming), and far below it here.
  const uint64_t whole = node_budget_range_need(m, {0, n}, c);
  EXPECT_EQ(node_budget_range_need(m, {0, n}, c), std::min(whole, stage_weight_bytes(m, {0, n}) + n * kv_reserve));
  EXPECT_LT(whole, stage_weight_bytes(m, {0, n}) / 2);
  // Two nodes at 30% of the weights each: below capacity resident, placed streamed, split in proportion (1:1).
  const uint64_t b = m.weight_bytes() * 3 / 10;
  const std::vector<node_capacity> nodes = {{"a", b}, {"b", b}};
  auto r = place_by_budget(resident, nodes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message.rfind("cluster below capacity", 0), 0u);
  auto s = place_by_budget(streaming, nodes);
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(placement_to_string(*s), "a=0-6,b=6-12");
  // Budgets under the streaming minimum of any range: below capacity either way.
  const uint64_t tiny = node_budget_range_need(m, {5, 6}, c) - 1;
  auto t = place_by_budget(streaming, {{"a", tiny}, {"b", tiny}});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.err().message.find("at least"), std::string::npos) << t.err().message;
}

}  // namespace
}  // namespace lime
