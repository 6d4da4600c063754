// Weight store memory and failure behaviour: plans account every byte under the budget and cover every weight;
// the residency rules' shapes (balanced, whole-layer prefix); the minimum budget and the error below it; the
// process's RSS grows by no more than the budget; a truncated or foreign file gives an error, never a crash.
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "runtime/stage.h"
#include "tests/runtime/weight_store_test_util.h"

namespace lime {
namespace {

using test::generate_greedy;
using test::same_bits;

test::tiny_spec small_spec(tensor_type t, bool tied = false) {
  test::tiny_spec s;
  s.n_vocab = 512;  // big enough that tensors, not 4 KiB alignment, dominate the buffers
  s.n_embd = 256;
  s.n_layer = 4;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 512;
  s.type = t;
  s.tied = tied;
  return s;
}

uint64_t unit_bytes(const plan_unit& u) { return u.resident_bytes + u.stream_bytes; }

TEST(weight_plan, every_plan_fits_its_budget_and_covers_every_weight) {
  for (bool tied : {false, true}) {
    test::model_file file(small_spec(tensor_type::q8_0, tied), tied ? "plan_t" : "plan_u");
    auto m = model::load(file.path);
    ASSERT_TRUE(m.ok());
    for (weight_policy pol : {weight_policy::lime, weight_policy::whole_layer, weight_policy::synchronous}) {
      weight_plan_config c = weight_store::plan_config(*m, test::store_cfg(0, pol));
      const uint64_t full = weight_plan_resident_budget(*m, c);
      auto min = weight_plan_min_budget(*m, c);
      ASSERT_TRUE(min.ok());
      ASSERT_LT(min.value(), full);
      c.budget = min.value() - 1;
      auto below = weight_plan_make(*m, c);
      ASSERT_FALSE(below.ok());
      EXPECT_EQ(below.err().code, errc::out_of_memory);
      EXPECT_NE(below.err().message.find("at least"), std::string::npos) << below.err().message;
      for (int i = 0; i <= 24; ++i) {
        c.budget = min.value() + (full - min.value()) * static_cast<uint64_t>(i) / 24;
        auto p = weight_plan_make(*m, c);
        ASSERT_TRUE(p.ok()) << p.err().message;
        SCOPED_TRACE(p->describe());
        EXPECT_LE(p->total_alloc, c.budget);
        uint64_t resident = 0, covered = 0;
        for (const plan_unit& u : p->units) {
          resident += u.resident_alloc;
          covered += unit_bytes(u);
          EXPECT_LE(u.stream_alloc, p->slot_bytes);
          EXPECT_EQ(u.resident_alloc % page_bytes(), 0u);
          for (const plan_extent& e : u.stream_ext) EXPECT_EQ(e.file_off % c.align, 0u);
        }
        if (p->embd_rows_streamed && !tied) covered += m->tok_embd().n_bytes;
        EXPECT_EQ(covered, m->weight_bytes());
        EXPECT_EQ(p->total_alloc, resident + p->ring_alloc + p->row_buffer_bytes);
        EXPECT_EQ(p->ring_alloc, p->slot_bytes * static_cast<uint64_t>(p->ring_depth));
        if (i == 24) {
          EXPECT_EQ(p->streamed_per_pass, 0u);
        }
      }
    }
  }
}

TEST(weight_plan, lime_balances_layers_and_whole_layer_keeps_a_prefix) {
  test::tiny_spec s = small_spec(tensor_type::f32);
  s.n_layer = 6;
  test::model_file file(s, "shape");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  const uint64_t wb = m->weight_bytes();
  uint64_t largest = 0;  // largest matrix of a layer
  for (const weight_view* w : {&m->layer(0).wq, &m->layer(0).w_gate, &m->layer(0).w_down}) largest = std::max(largest, w->n_bytes);
  for (int pct : {35, 50, 75}) {
    weight_plan_config c = weight_store::plan_config(*m, test::store_cfg(test::percent_of(wb, pct), weight_policy::lime));
    c.ring_depth = 2;
    auto lime = weight_plan_make(*m, c);
    c.policy = weight_policy::whole_layer;
    auto whole = weight_plan_make(*m, c);
    ASSERT_TRUE(lime.ok() && whole.ok());
    SCOPED_TRACE(std::to_string(pct) + "%: " + lime->describe() + " | " + whole->describe());
    uint64_t lo = UINT64_MAX, hi = 0;
    bool seen_streamed = false;
    for (int32_t l = 0; l < s.n_layer; ++l) {
      const plan_unit& u = lime->units[static_cast<size_t>(l)];
      lo = std::min(lo, u.stream_bytes), hi = std::max(hi, u.stream_bytes);
      const plan_unit& w = whole->units[static_cast<size_t>(l)];
      EXPECT_TRUE(w.stream_bytes == 0 || w.resident_bytes == w.tensors[0].shape.n_bytes + w.tensors[5].shape.n_bytes)
          << "whole-layer keeps a layer whole (norms aside)";
      if (w.streamed()) {
        seen_streamed = true;
      } else {
        EXPECT_FALSE(seen_streamed) << "resident layers come first";
      }
      for (const plan_tensor& t : u.tensors) {
        if (t.role == weight_role::attn_norm || t.role == weight_role::ffn_norm) {
          EXPECT_TRUE(t.resident);
        }
      }
    }
    EXPECT_GT(hi, 0u);
    EXPECT_LE(hi - lo, largest) << "every layer streams about the same bytes";
    EXPECT_LE(lime->slot_bytes, whole->slot_bytes);
    // Balanced streams less (its slot is smaller, so more stays resident); where the ring of whole layers takes
    // nearly all the budget both stream everything and differ only by alignment slack.
    EXPECT_LE(lime->streamed_per_pass, whole->streamed_per_pass + wb / 100);
    if (pct >= 50) {
      EXPECT_LT(lime->streamed_per_pass, whole->streamed_per_pass);
    }
  }
}

TEST(weight_store, budget_below_the_minimum_is_refused_and_the_minimum_runs) {
  test::model_file file(small_spec(tensor_type::q4_0), "min");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  for (int32_t depth : {0, 1, 3}) {
    weight_store_config c = test::store_cfg(0, weight_policy::lime);
    c.ring_depth = depth;
    auto min = weight_plan_min_budget(*m, weight_store::plan_config(*m, c));
    ASSERT_TRUE(min.ok());
    c.budget = min.value() - 1;
    auto bad = weight_store::create(*m, file.path, c);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.err().code, errc::out_of_memory);
    EXPECT_NE(bad.err().message.find("ring"), std::string::npos) << bad.err().message;
    c.budget = min.value();
    auto ok = weight_store::create(*m, file.path, c);
    ASSERT_TRUE(ok.ok()) << ok.err().message;
    const auto prompt = test::prompt_for(3, m->hparams().n_vocab);
    const test::generation g = generate_greedy(*m, prompt, 4, 1, ok->get());
    ASSERT_TRUE(g.st.ok());
    EXPECT_TRUE(same_bits(g.logits, generate_greedy(*m, prompt, 4, 1).logits));
    EXPECT_LE((*ok)->stats().peak_accounted, min.value());
    if (depth > 0) {
      EXPECT_EQ((*ok)->stats().ring_depth, depth);
    }
  }
}

// RssAnon + RssFile of this process in bytes (0 where /proc is not there).
uint64_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  uint64_t total = 0;
  while (std::getline(f, line)) {
    if (line.rfind("RssAnon:", 0) == 0 || line.rfind("RssFile:", 0) == 0) {
      std::istringstream is(line.substr(8));
      uint64_t kb = 0;
      is >> kb;
      total += kb * 1024;
    }
  }
  return total;
}

TEST(weight_store, process_memory_grows_by_no_more_than_the_budget) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer shadow memory grows with every mapping";
#endif
  if (rss_bytes() == 0) GTEST_SKIP() << "no /proc/self/status";
  test::tiny_spec s;
  s.n_vocab = 2048;
  s.n_embd = 384;
  s.n_head = 6;
  s.n_head_kv = 2;
  s.n_ff = 1024;
  s.n_layer = 8;
  s.type = tensor_type::f32;
  test::model_file file(s, "rss");
  ::malloc_trim(0);
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  const uint64_t wb = m->weight_bytes();
  ASSERT_GT(wb, 40ull << 20);
  const auto prompt = test::prompt_for(4, s.n_vocab);
  const uint64_t budget = test::percent_of(wb, 25);
  const uint64_t slack = 8ull << 20;  // KV blocks, activations, thread stacks, allocator
  test::generation g;
  weight_store_stats st;
  const uint64_t before = rss_bytes();
  {
    weight_store_config c = test::store_cfg(budget, weight_policy::lime);
    c.lock_memory = true;
    auto store = weight_store::create(*m, file.path, c);
    ASSERT_TRUE(store.ok()) << store.err().message;
    g = generate_greedy(*m, prompt, 4, 2, store->get());
    ASSERT_TRUE(g.st.ok()) << g.st.err().message;
    st = (*store)->stats();
    const uint64_t grown = rss_bytes() - before;
    EXPECT_LE(grown, budget + slack) << "grew " << grown << " bytes with a budget of " << budget;
  }
  EXPECT_LE(st.peak_accounted, budget);
  EXPECT_GT(st.bytes_streamed, wb / 2);
  EXPECT_TRUE(st.locked_bytes == st.accounted || !st.lock_note.empty());
  // The measure is sensitive: the plain mapped run pulls the weights in.
  const uint64_t mid = rss_bytes();
  const test::generation plain = generate_greedy(*m, prompt, 1, 2);
  EXPECT_GT(rss_bytes() - mid, wb * 3 / 4);
  EXPECT_TRUE(std::equal(plain.logits.begin(), plain.logits.end(), g.logits.begin()));
}

TEST(weight_store, truncated_file_gives_io_error_and_recovers_when_restored) {
  test::model_file file(small_spec(tensor_type::f32), "trunc");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  std::vector<char> bytes;
  {
    std::ifstream f(file.path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  const auto prompt = test::prompt_for(4, m->hparams().n_vocab);
  const test::generation ref = generate_greedy(*m, prompt, 5, 1);
  const uint64_t wb = m->weight_bytes();
  auto store = weight_store::create(*m, file.path, test::store_cfg(wb / 2, weight_policy::lime));
  ASSERT_TRUE(store.ok());
  ASSERT_EQ(::truncate(file.path.c_str(), static_cast<off_t>(bytes.size() / 2)), 0);
  const test::generation bad = generate_greedy(*m, prompt, 5, 1, store->get());
  ASSERT_FALSE(bad.st.ok());
  EXPECT_EQ(bad.st.err().code, errc::io_error);
  EXPECT_NE(bad.st.err().message.find("truncated"), std::string::npos) << bad.st.err().message;
  // Growing the resident set needs reads too: the change is applied, the load fails, the pass says so.
  ASSERT_TRUE((*store)->take_back(wb / 4).ok());
  const test::generation bad2 = generate_greedy(*m, prompt, 2, 1, store->get());
  ASSERT_FALSE(bad2.st.ok());
  EXPECT_EQ(bad2.st.err().code, errc::io_error);
  {
    std::ofstream f(file.path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const test::generation good = generate_greedy(*m, prompt, 5, 1, store->get());
  ASSERT_TRUE(good.st.ok()) << good.st.err().message;
  EXPECT_TRUE(same_bits(good.logits, ref.logits));
}

TEST(weight_store, a_file_that_is_not_the_models_is_refused) {
  test::model_file file(small_spec(tensor_type::f32), "mine");
  test::tiny_spec other = small_spec(tensor_type::f32);
  other.seed = 99;
  other.n_ff = 480;
  test::model_file foreign(other, "foreign");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  auto s = weight_store::create(*m, foreign.path, test::store_cfg(m->weight_bytes() / 2, weight_policy::lime));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::bad_format);
  // Same size, different header bytes.
  std::vector<char> bytes;
  {
    std::ifstream f(file.path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  bytes[100] = static_cast<char>(bytes[100] ^ 0x5a);
  const std::string garbled = file.path + ".garbled";
  {
    std::ofstream f(garbled, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto s2 = weight_store::create(*m, garbled, test::store_cfg(m->weight_bytes() / 2, weight_policy::lime));
  std::remove(garbled.c_str());
  ASSERT_FALSE(s2.ok());
  EXPECT_EQ(s2.err().code, errc::bad_format);
  auto s3 = weight_store::create(*m, file.path + ".missing", test::store_cfg(m->weight_bytes() / 2, weight_policy::lime));
  ASSERT_FALSE(s3.ok());
  EXPECT_EQ(s3.err().code, errc::io_error);
}

}  // namespace
}  // namespace lime
