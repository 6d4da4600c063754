// Placement: budget-proportional splits, dropped nodes, below capacity, repair, the placement flag format, sizes.
#include <gtest/gtest.h>

#include "runtime/placement.h"
#include "tests/tiny_model.h"

namespace lime {
namespace {

model_footprint equal_layers(int32_t n, uint64_t layer, uint64_t embd = 0, uint64_t head = 0, uint64_t kv = 0) {
  model_footprint f;
  f.layer_bytes.assign(static_cast<size_t>(n), layer);
  f.embd_bytes = embd;
  f.head_bytes = head;
  f.kv_bytes_per_layer = kv;
  return f;
}

std::string place(const model_footprint& f, const std::vector<node_capacity>& nodes) {
  auto r = place_by_budget(f, nodes);
  if (!r.ok()) return std::string("error: ") + r.err().message;
  return placement_to_string(r.value());
}

constexpr uint64_t k_gib = 1ull << 30;

TEST(placement, shares_are_proportional_to_budgets) {
  const auto f = equal_layers(8, 100, 50, 60, 10);
  EXPECT_EQ(place(f, {{"a", k_gib}, {"b", k_gib}, {"c", 2 * k_gib}}), "a=0-2,b=2-4,c=4-8");
  EXPECT_EQ(place(f, {{"a", 3 * k_gib}, {"b", k_gib}}), "a=0-6,b=6-8");
  EXPECT_EQ(place(f, {{"solo", k_gib}}), "solo=0-8");
  // Largest remainder: 10 layers over 1:1:1 -> 3.33 each -> the first node takes the extra one.
  EXPECT_EQ(place(equal_layers(10, 1), {{"a", k_gib}, {"b", k_gib}, {"c", k_gib}}), "a=0-4,b=4-7,c=7-10");
  // Every node with a budget gets at least one layer even when its share rounds to 0 (taken from the largest).
  EXPECT_EQ(place(equal_layers(4, 1), {{"a", 100 * k_gib}, {"b", k_gib}}), "a=0-3,b=3-4");
  // Fewer layers than nodes: the smallest shares get nothing.
  EXPECT_EQ(place(equal_layers(2, 1), {{"a", k_gib}, {"b", 3 * k_gib}, {"c", 2 * k_gib}}), "b=0-1,c=1-2");
}

TEST(placement, a_node_that_cannot_hold_one_layer_is_left_out) {
  const auto f = equal_layers(6, 1000, 0, 0, 24);
  EXPECT_EQ(place(f, {{"a", 1 << 20}, {"tiny", 1023}, {"b", 1 << 20}}), "a=0-3,b=3-6");
  EXPECT_EQ(place(f, {{"tiny", 1023}, {"a", 1 << 20}}), "a=0-6");
  EXPECT_EQ(place(f, {{"zero", 0}, {"a", 1 << 20}}), "a=0-6");
}

TEST(placement, below_capacity_is_unavailable) {
  const auto f = equal_layers(6, 1000, 500, 500, 0);  // needs 7000 bytes
  for (const auto& nodes : std::vector<std::vector<node_capacity>>{
           {{"a", 3000}, {"b", 3000}},              // 6000 in all
           {{"a", 999}, {"b", 999}},                // nobody holds a layer
           {{"a", 3400}, {"b", 3600}},              // 7000 in all, but no contiguous split fits
       }) {
    auto r = place_by_budget(f, nodes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::unavailable);
    EXPECT_EQ(r.err().message.rfind("cluster below capacity", 0), 0u) << r.err().message;
  }
  // Exactly enough fits.
  EXPECT_EQ(place(f, {{"a", 3500}, {"b", 3500}}), "a=0-3,b=3-6");
  auto empty = place_by_budget(f, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.err().code, errc::invalid_argument);
  auto no_layers = place_by_budget(model_footprint{}, {{"a", k_gib}});
  ASSERT_FALSE(no_layers.ok());
  EXPECT_EQ(no_layers.err().code, errc::invalid_argument);
}

bool fits(const model_footprint& f, const std::vector<placement_group>& g, const std::vector<node_capacity>& nodes) {
  const int32_t n = static_cast<int32_t>(f.layer_bytes.size());
  for (const placement_group& p : g) {
    uint64_t c = 0;
    for (int32_t l = p.layer_lo; l < p.layer_hi; ++l) c += f.layer_bytes[static_cast<size_t>(l)] + f.kv_bytes_per_layer;
    if (p.layer_lo == 0) c += f.embd_bytes;
    if (p.layer_hi == n) c += f.head_bytes;
    for (const node_capacity& nc : nodes)
      if (nc.name == p.node && c > nc.mem_budget) return false;
  }
  return true;
}

TEST(placement, an_over_budget_share_is_repaired_by_moving_layers_to_neighbours) {
  // Proportional 2/2, but the first node also holds the 40-byte embedding: 60 > 50. One layer moves right.
  const auto f = equal_layers(4, 10, 40, 0, 0);
  const std::vector<node_capacity> two = {{"a", 50}, {"b", 50}};
  EXPECT_EQ(place(f, two), "a=0-1,b=1-4");
  // Heavy head on the last node (2 layers + head = 45 > 40): it hands a layer to the left.
  const auto g = equal_layers(6, 10, 0, 25, 0);
  const std::vector<node_capacity> three = {{"a", 40}, {"b", 40}, {"c", 40}};
  auto r = place_by_budget(g, three);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(placement_to_string(r.value()), "a=0-2,b=2-5,c=5-6");
  EXPECT_TRUE(fits(g, r.value(), three));
  // The neighbour is full too: no single move helps, but a contiguous split exists and is found.
  const auto h = equal_layers(6, 10, 35, 0, 0);
  const std::vector<node_capacity> tight = {{"a", 50}, {"b", 10}, {"c", 100}};
  auto t = place_by_budget(h, tight);
  ASSERT_TRUE(t.ok()) << t.err().message;
  EXPECT_TRUE(fits(h, t.value(), tight));
  EXPECT_EQ(placement_to_string(t.value()), "a=0-1,b=1-2,c=2-6");
}

TEST(placement, footprint_of_a_model_counts_every_weight_once_per_holder) {
  for (bool tied : {false, true}) {
    test::tiny_spec s;
    s.n_layer = 4;
    s.tied = tied;
    auto m = test::make_tiny_model(s);
    ASSERT_TRUE(m.ok());
    const model_footprint f = footprint_of(*m, 123);
    ASSERT_EQ(f.layer_bytes.size(), 4u);
    uint64_t total = f.embd_bytes + f.head_bytes - (tied ? f.embd_bytes : 0);
    for (uint64_t b : f.layer_bytes) total += b;
    EXPECT_EQ(total, m->weight_bytes());
    EXPECT_EQ(f.kv_bytes_per_layer, 123u);
    EXPECT_EQ(f.tied, tied);
    EXPECT_EQ(f.embd_bytes, m->tok_embd().n_bytes);
    // A single node needs exactly the model's weights plus the KV reserve.
    const uint64_t need = m->weight_bytes() + 4 * 123;
    EXPECT_EQ(place(f, {{"a", need}}), "a=0-4");
    EXPECT_FALSE(place_by_budget(f, {{"a", need - 1}}).ok());
  }
}

TEST(placement, parse_and_print_round_trip) {
  auto r = parse_placement("head=0-2,w1=2-5", 5);
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].node, "w1");
  EXPECT_EQ((*r)[1].layer_lo, 2);
  EXPECT_EQ((*r)[1].layer_hi, 5);
  EXPECT_EQ(placement_to_string(r.value()), "head=0-2,w1=2-5");
  auto again = parse_placement("a=0-1, b=1-3 ,a=3-4", 4);  // a node may hold several groups
  ASSERT_TRUE(again.ok()) << again.err().message;
  EXPECT_EQ(placement_to_string(again.value()), "a=0-1,b=1-3,a=3-4");
}

TEST(placement, parse_errors) {
  for (const char* bad : {"",                  // nothing
                          "a=0-2,b=3-5",       // gap
                          "a=0-3,b=2-5",       // overlap
                          "a=0-2,b=2-2,c=2-5", // empty group
                          "a=0-2,b=4-2",       // reversed
                          "a=1-5",             // does not start at 0
                          "a=0-4",             // does not reach the end
                          "a=0-6",             // past the end
                          "a=0-x", "a=-1-5", "a=0-5a", "=0-5", "a0-5", "a=05", "a=0-5,", "a=0-99999999999"}) {
    auto r = parse_placement(bad, 5);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.err().code, errc::invalid_argument) << bad;
    }
  }
}

TEST(placement, sizes) {
  struct ok_case { const char* text; uint64_t bytes; };
  for (const ok_case& c : {ok_case{"123", 123}, ok_case{"512M", 512ull << 20}, ok_case{"512MiB", 512ull << 20},
                           ok_case{"512MB", 512ull << 20}, ok_case{"2G", 2ull << 30}, ok_case{"1.5G", 3ull << 29},
                           ok_case{"4KiB", 4096}, ok_case{"4k", 4096}, ok_case{"0.5K", 512}, ok_case{"1T", 1ull << 40},
                           ok_case{"0", 0}, ok_case{"18446744073709551615", ~0ull}, ok_case{"16777215T", 16777215ull << 40}}) {
    auto r = parse_size(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.err().message;
    EXPECT_EQ(r.value(), c.bytes) << c.text;
  }
  for (const char* bad : {"", "-1", "12Q", "G", "1.", ".5G", "1.5", "1 G", "1GiBx", "1Gi", "18446744073709551616",
                          "16777216T", "99999999999999999999999"}) {
    auto r = parse_size(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.err().code, errc::invalid_argument);
    }
  }
  EXPECT_EQ(format_size(512ull << 20), "512.0 MiB");
  EXPECT_EQ(format_size(3ull << 29), "1.5 GiB");
  EXPECT_EQ(format_size(1000), "1000 B");
  EXPECT_EQ(format_size(4096), "4.0 KiB");
}

}  // namespace
}  // namespace lime
