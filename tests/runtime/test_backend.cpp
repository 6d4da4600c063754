// The backend interface on the CPU (runs everywhere): budget accounting, copies, streams/events, the forward engine
// it makes (bitwise forward_pass), names and the factory's errors; kv_cache with a block allocator.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>

#include "runtime/backend.h"
#include "runtime/session.h"
#include "tests/tiny_model.h"

namespace lime {
namespace {

std::shared_ptr<backend> cpu(uint64_t budget = 0) {
  backend_options o;
  o.kind = backend_kind::cpu;
  o.device_budget = budget;
  auto b = make_backend(o);
  EXPECT_TRUE(b.ok());
  return b.ok() ? b.value() : nullptr;
}

TEST(backend, names_and_default) {
  EXPECT_STREQ(backend_kind_name(backend_kind::cpu), "cpu");
  EXPECT_STREQ(backend_kind_name(backend_kind::cuda), "cuda");
  EXPECT_EQ(backend_kind_from_name("cpu").value(), backend_kind::cpu);
  EXPECT_EQ(backend_kind_from_name("cuda").value(), backend_kind::cuda);
  EXPECT_EQ(backend_kind_from_name("auto").value(), backend_default());
  auto bad = backend_kind_from_name("tpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  // auto means cuda exactly when a device is there to use.
  EXPECT_EQ(backend_default() == backend_kind::cuda, backend_cuda_built() && backend_cuda_devices() > 0);
  if (!backend_cuda_built()) {
    EXPECT_EQ(backend_cuda_devices(), 0);
  }
}

TEST(backend, cuda_factory_explains_why_it_cannot) {
  if (backend_cuda_devices() > 0) GTEST_SKIP() << "a CUDA device is present";
  backend_options o;
  o.kind = backend_kind::cuda;
  auto b = make_backend(o);
  ASSERT_FALSE(b.ok());
  if (backend_cuda_built()) {
    EXPECT_EQ(b.err().code, errc::unavailable);
    EXPECT_NE(b.err().message.find("no CUDA device"), std::string::npos) << b.err().message;
  } else {
    EXPECT_EQ(b.err().code, errc::unsupported);
    EXPECT_NE(b.err().message.find("built without CUDA"), std::string::npos) << b.err().message;
  }
}

TEST(backend, cpu_alloc_is_counted_against_the_budget) {
  auto be = cpu(1000);
  ASSERT_TRUE(be);
  EXPECT_EQ(be->budget(), 1000u);
  EXPECT_EQ(be->available(), 1000u);
  auto a = be->alloc(600);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.value()) % 64, 0u);
  EXPECT_GE(be->allocated(), 600u);
  auto b = be->alloc(600);  // 1200 > 1000
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code, errc::out_of_memory);
  EXPECT_NE(b.err().message.find("budget"), std::string::npos);
  be->free(a.value());
  EXPECT_EQ(be->allocated(), 0u);
  EXPECT_GE(be->peak(), 600u);
  auto c = be->alloc(600);  // fits again once freed
  ASSERT_TRUE(c.ok());
  be->free(c.value());
  be->free(nullptr);
  EXPECT_EQ(be->allocated(), 0u);
  auto unlimited = cpu(0);
  EXPECT_EQ(unlimited->available(), UINT64_MAX);
}

TEST(backend, cpu_copies_streams_and_events) {
  auto be = cpu();
  auto s = be->stream_create();
  auto e = be->event_create();
  ASSERT_TRUE(s.ok() && e.ok());
  std::vector<uint8_t> src(1000), dst(1000, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
  auto dev = be->alloc(src.size());
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE(be->copy_async(dev.value(), src.data(), src.size(), copy_kind::host_to_device, s.value()).ok());
  ASSERT_TRUE(be->event_record(e.value(), s.value()).ok());
  ASSERT_TRUE(be->event_wait(s.value(), e.value()).ok());
  ASSERT_TRUE(be->copy_async(dst.data(), dev.value(), dst.size(), copy_kind::device_to_host, s.value()).ok());
  ASSERT_TRUE(be->event_synchronize(e.value()).ok());
  ASSERT_TRUE(be->synchronize(s.value()).ok());
  EXPECT_EQ(src, dst);
  EXPECT_FALSE(be->copy_async(nullptr, src.data(), 4, copy_kind::host_to_host, s.value()).ok());
  auto host = be->alloc_host(64);
  ASSERT_TRUE(host.ok());
  ASSERT_TRUE(be->host_register(host.value(), 64).ok());
  EXPECT_EQ(be->device_address(host.value()).value(), host.value());
  be->host_unregister(host.value());
  be->free_host(host.value());
  be->free(dev.value());
  be->event_destroy(e.value());
  be->stream_destroy(s.value());
  EXPECT_EQ(be->kv_allocator(), nullptr);
  EXPECT_FALSE(be->unified());
  EXPECT_TRUE(be->activate().ok());
}

// The engine a CPU backend makes is forward_pass: same logits, bit for bit, as one built directly.
TEST(backend, cpu_engine_is_the_reference_forward_pass) {
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok()) << m.err().message;
  const model_hparams& hp = m->hparams();
  auto be = cpu();
  thread_pool pool(2);
  kv_cache_config c;
  c.n_layer = hp.n_layer;
  c.row_elems = hp.n_embd_kv();
  c.block_size = 16;
  c.max_blocks = 16;
  c.allocator = be->kv_allocator();
  auto kv1 = kv_cache::create(c);
  auto kv2 = kv_cache::create(c);
  ASSERT_TRUE(kv1.ok() && kv2.ok());
  forward_engine_args a;
  a.m = &*m;
  a.range = {0, hp.n_layer};
  a.kv = &kv1.value();
  a.pool = &pool;
  auto eng = be->make_forward(a);
  ASSERT_TRUE(eng.ok()) << eng.err().message;
  EXPECT_EQ(eng.value()->range().hi, hp.n_layer);
  forward_pass ref(*m, {0, hp.n_layer}, kv2.value(), pool);
  micro_batch b;
  for (int i = 0; i < 9; ++i) b.add((i * 13 + 2) % hp.n_vocab, i, 0, true);
  forward_output o1, o2;
  ASSERT_TRUE(eng.value()->run(b, o1).ok());
  ASSERT_TRUE(ref.run(b, o2).ok());
  ASSERT_EQ(o1.logits.size(), 9u * static_cast<size_t>(hp.n_vocab));
  ASSERT_EQ(o1.logits.size(), o2.logits.size());
  EXPECT_EQ(std::memcmp(o1.logits.data(), o2.logits.data(), o1.logits.size() * sizeof(float)), 0);
  a.kv = nullptr;
  EXPECT_FALSE(be->make_forward(a).ok());
}

// A block allocator that counts and can be told to refuse.
class counting_allocator final : public kv_block_allocator {
 public:
  void* alloc(uint64_t bytes) override {
    if (refuse) return nullptr;
    void* p = ::operator new(static_cast<size_t>(bytes));
    live.insert(p);
    return p;
  }
  void free(void* p) override {
    EXPECT_EQ(live.erase(p), 1u) << "a block freed twice or never allocated here";
    ::operator delete(p);
  }
  bool refuse = false;
  std::set<void*> live;
};

TEST(backend, kv_cache_takes_blocks_from_its_allocator) {
  auto alloc = std::make_shared<counting_allocator>();
  kv_cache_config c;
  c.n_layer = 2;
  c.row_elems = 8;
  c.block_size = 4;
  c.max_blocks = 10;
  c.allocator = alloc;
  {
    auto kv = kv_cache::create(c);
    ASSERT_TRUE(kv.ok());
    ASSERT_TRUE(kv->reserve(0, 10).ok());  // 3 blocks
    EXPECT_EQ(alloc->live.size(), 3u);
    EXPECT_EQ(alloc->live.count(kv->k_row(0, 0, 9)) + alloc->live.count(kv->k_row(0, 0, 0)), 1u);  // block 0 is a base
    // Refused: nothing changes (the sequence keeps its 3 blocks, the pool its count).
    alloc->refuse = true;
    auto r = kv->reserve(0, 30);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::out_of_memory);
    EXPECT_EQ(kv->capacity(0), 12);
    EXPECT_EQ(kv->blocks_in_use(), 3);
    auto fresh = kv->reserve(1, 1);
    EXPECT_FALSE(fresh.ok());
    EXPECT_EQ(kv->capacity(1), 0);
    alloc->refuse = false;
    kv->release(0);  // blocks stay cached for reuse
    EXPECT_EQ(alloc->live.size(), 3u);
    ASSERT_TRUE(kv->reserve(2, 4).ok());
    EXPECT_EQ(alloc->live.size(), 3u);
    ASSERT_TRUE(kv->set_max_blocks(1).ok());  // free blocks' memory goes back
    EXPECT_EQ(alloc->live.size(), 1u);
    // A cache made from the config (pipeline_stage::release_all) allocates from the same allocator.
    auto again = kv_cache::create(kv->config());
    ASSERT_TRUE(again.ok());
    ASSERT_TRUE(again->reserve(0, 1).ok());
    EXPECT_EQ(alloc->live.size(), 2u);
  }
  EXPECT_TRUE(alloc->live.empty());  // every block returned when the caches go
}

TEST(backend, session_on_the_cpu_backend_is_unchanged) {
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  vocab voc;
  voc.tokens.resize(static_cast<size_t>(m->hparams().n_vocab));
  session_config a, b;
  a.n_threads = b.n_threads = 1;
  b.backend.kind = backend_kind::cpu;
  b.backend.device_budget = 64ull << 20;  // a cpu budget counts only what goes through alloc: the pass does not
  auto s1 = session::create(*m, voc, a);
  auto s2 = session::create(*m, voc, b);
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ((*s1)->device().kind(), backend_kind::cpu);
  const std::vector<int32_t> prompt = {1, 5, 9, 33, 2};
  auto l1 = (*s1)->eval_logits(prompt);
  auto l2 = (*s2)->eval_logits(prompt);
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_EQ(*l1, *l2);
}

}  // namespace
}  // namespace lime
