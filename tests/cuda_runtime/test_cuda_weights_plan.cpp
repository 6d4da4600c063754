// cuda_weights' bookkeeping on the CPU backend (runs without a device: its copies are memcpy and its events no-ops):
// every pass hands out each layer's and each head row's exact bytes, in order, whatever the budget (all resident,
// a ring of 2 or 1 slots, a split head), from the model's views, from a streaming host weight store, or in place.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/weight_plan.h"
#include "runtime/weight_store.h"
#include "tests/cuda_runtime/cuda_runtime_test_util.h"

namespace lime {
namespace {

std::shared_ptr<backend> cpu_backend() { return make_backend(backend_options{}).value(); }

bool same_bytes(const weight_view& got, const weight_view& want) {
  return got.type == want.type && got.k == want.k && got.n_rows == want.n_rows &&
         std::memcmp(got.data, want.data, static_cast<size_t>(want.n_bytes)) == 0;
}

// Runs `passes` passes the way cuda_forward does and checks every byte handed out against the model's views.
void check_passes(cuda_weights& w, const model& m, weight_source* src, int passes) {
  const int32_t n_layer = m.hparams().n_layer;
  const weight_view& out = m.output();
  const uint64_t row_bytes = tensor_row_bytes(out.type, out.k);
  for (int p = 0; p < passes; ++p) {
    if (src) {
      ASSERT_TRUE(src->begin_pass().ok());
    }
    ASSERT_TRUE(w.begin_pass().ok());
    for (int32_t l = 0; l < n_layer; ++l) {
      auto v = w.layer(l);
      ASSERT_TRUE(v.ok()) << v.err().message;
      const layer_weights& want = m.layer(l);
      const layer_weights& got = *v.value();
      EXPECT_TRUE(same_bytes(got.attn_norm, want.attn_norm) && same_bytes(got.wq, want.wq) && same_bytes(got.wk, want.wk) &&
                  same_bytes(got.wv, want.wv) && same_bytes(got.wo, want.wo) && same_bytes(got.ffn_norm, want.ffn_norm) &&
                  same_bytes(got.w_gate, want.w_gate) && same_bytes(got.w_up, want.w_up) && same_bytes(got.w_down, want.w_down))
          << "pass " << p << " layer " << l;
      ASSERT_TRUE(w.layer_done(l).ok());
    }
    auto norm = w.output_norm();
    ASSERT_TRUE(norm.ok());
    EXPECT_EQ(std::memcmp(norm.value(), m.output_norm().data, static_cast<size_t>(m.output_norm().n_bytes)), 0);
    int64_t next_row = 0;
    for (;;) {
      auto r = w.head_next();
      ASSERT_TRUE(r.ok()) << r.err().message;
      if (r->w.n_rows == 0) break;
      EXPECT_EQ(r->row0, next_row) << "head rows out of order";
      if (w.max_head_rows() > 0) {
        EXPECT_LE(r->w.n_rows, w.max_head_rows()) << "a head block larger than the plan's blocks";
      } else if (!w.stats().in_place) {
        EXPECT_EQ(r->w.n_rows, out.n_rows) << "a split head must report its block rows";
      }
      EXPECT_EQ(std::memcmp(r->w.data, static_cast<const uint8_t*>(out.data) + static_cast<uint64_t>(r->row0) * row_bytes,
                            static_cast<size_t>(r->w.n_rows) * row_bytes), 0)
          << "pass " << p << " head rows at " << r->row0;
      next_row = r->row0 + r->w.n_rows;
      ASSERT_TRUE(w.head_done().ok());
    }
    EXPECT_EQ(next_row, out.n_rows) << "the head's rows were not all handed out";
  }
}

struct streams {
  std::shared_ptr<backend> be = cpu_backend();
  stream_handle compute = be->stream_create().value(), copy = be->stream_create().value();
  ~streams() {
    be->stream_destroy(compute);
    be->stream_destroy(copy);
  }
};

TEST(cuda_weights_plan, model_views_at_every_budget) {
  auto m = test::make_tiny_model(test::streaming_spec(tensor_type::q8_0));
  ASSERT_TRUE(m.ok());
  const layer_range all{0, m->hparams().n_layer};
  const uint64_t slot = cuda_weights::min_device_bytes(*m, all);
  streams s;
  struct want { double slots; int32_t depth; bool split_head; };
  for (const want& c : {want{1000, 0, false}, want{3.5, 2, true}, want{2.2, 2, true}, want{1.5, 1, true}}) {
    cuda_weights_config cfg;
    cfg.budget = static_cast<uint64_t>(c.slots * static_cast<double>(slot));
    const uint64_t before = s.be->allocated();
    auto w = cuda_weights::create(s.be, *m, all, nullptr, cfg, s.compute, s.copy);
    ASSERT_TRUE(w.ok()) << w.err().message;
    const cuda_weights_stats& st = w.value()->stats();
    EXPECT_EQ(st.ring_depth, c.depth) << st.describe();
    EXPECT_EQ(st.units > m->hparams().n_layer + 1, c.split_head) << st.describe();
    EXPECT_LE(s.be->allocated() - before, cfg.budget) << st.describe();
    if (c.depth > 0) {
      EXPECT_LT(st.resident_units, st.units);
      EXPECT_GT(st.pinned_bytes, 0u);
    }
    check_passes(*w.value(), *m, nullptr, 3);
    w.value().reset();
    EXPECT_EQ(s.be->allocated(), before) << "device memory not returned";
  }
  cuda_weights_config tiny;
  tiny.budget = slot / 2;
  auto w = cuda_weights::create(s.be, *m, all, nullptr, tiny, s.compute, s.copy);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.err().code, errc::out_of_memory);
}

TEST(cuda_weights_plan, copied_from_a_streaming_store_and_in_place) {
  test::model_on_disk f(test::streaming_spec(tensor_type::f16), "plan");
  ASSERT_TRUE(f.m);
  const layer_range all{0, f.m->hparams().n_layer};
  weight_store_config sc;
  sc.range = all;
  auto min = weight_plan_min_budget(*f.m, weight_store::plan_config(*f.m, sc));
  ASSERT_TRUE(min.ok());
  sc.budget = min.value() + (min.value() >> 1);
  const uint64_t slot = cuda_weights::min_device_bytes(*f.m, all);
  streams s;
  for (double slots : {1000.0, 3.5, 1.5}) {
    auto store = weight_store::create(*f.m, f.path, sc);
    ASSERT_TRUE(store.ok()) << store.err().message;
    cuda_weights_config cfg;
    cfg.budget = static_cast<uint64_t>(slots * static_cast<double>(slot));
    auto w = cuda_weights::create(s.be, *f.m, all, store.value().get(), cfg, s.compute, s.copy);
    ASSERT_TRUE(w.ok()) << w.err().message;
    EXPECT_GT(w.value()->stats().ring_depth, 0);
    check_passes(*w.value(), *f.m, store.value().get(), 3);
    EXPECT_GT(store.value()->stats().bytes_streamed, 0u);
  }
  auto store = weight_store::create(*f.m, f.path, sc);
  ASSERT_TRUE(store.ok());
  cuda_weights_config cfg;
  cfg.in_place = true;
  auto w = cuda_weights::create(s.be, *f.m, all, store.value().get(), cfg, s.compute, s.copy);
  ASSERT_TRUE(w.ok()) << w.err().message;
  EXPECT_TRUE(w.value()->stats().in_place);
  EXPECT_EQ(s.be->allocated(), 0u);
  check_passes(*w.value(), *f.m, store.value().get(), 2);
}

}  // namespace
}  // namespace lime
