// Network actor fault injection (drop, duplicate, corrupt, delay, disconnect), rate limiting with bandwidth
// measurement, chunked reads of large frames and the frame-size limit, on real loopback sockets.
#include <thread>

#include "tests/actors/network_test_util.h"

namespace lime::test {
namespace {

using network_faults_test = network_fixture;

fault_config rules(std::vector<fault_rule> r, uint64_t seed = 7) { return fault_config{std::move(r), seed}; }

TEST_F(network_faults_test, DropLosesSomeFramesAndKeepsOrder) {
  net_node a, b;
  make_pair(a, b);
  call(a, net_faults_atom_v, rules({{"token_stream", fault_action::drop, 0.5, 0}}));
  const int n = 200;
  for (int i = 0; i < n; ++i) send(a, "b", make_frame_ptr(msg::token_stream{static_cast<uint64_t>(i), {i}, ""}));
  send(a, "b", make_frame_ptr(msg::generation_done{999, "eog", 0, 0, 0, 0, 0}));  // sentinel, not hit by the rule
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.n_frames("generation_done") == 1; }));
  net_stats sa = stats(a);
  std::lock_guard<std::mutex> lock(b.log->m);
  const size_t got = b.log->n_frames("token_stream");
  EXPECT_EQ(got + sa.fault_dropped, static_cast<size_t>(n));
  EXPECT_GT(sa.fault_dropped, 50u);  // p = 0.5 of 200, seeded
  EXPECT_LT(sa.fault_dropped, 150u);
  int64_t last = -1;
  for (auto& [peer, f] : b.log->frames) {
    if (auto* ts = std::get_if<msg::token_stream>(&f->content)) {
      EXPECT_GT(static_cast<int64_t>(ts->request_id), last);
      last = static_cast<int64_t>(ts->request_id);
    }
  }
  EXPECT_EQ(std::strcmp(msg::frame_kind(*b.log->frames.back().second), "generation_done"), 0);
}

TEST_F(network_faults_test, SameSeedDropsTheSameFrames) {
  auto run = [&](const std::string& suffix) {
    net_node b = make_node(fast_config("b" + suffix));
    net_node a = make_node(fast_config("a" + suffix));
    EXPECT_TRUE(connect(a, "b" + suffix, b.port).has_value());
    call(a, net_faults_atom_v, rules({{"cancel", fault_action::drop, 0.3, 0}}, 99));
    for (uint64_t i = 0; i < 50; ++i) send(a, "b" + suffix, make_frame_ptr(msg::cancel_request{i}));
    send(a, "b" + suffix, make_frame_ptr(msg::generation_done{}));
    EXPECT_TRUE(b.log->wait([](event_log& l) { return l.n_frames("generation_done") == 1; }));
    std::vector<uint64_t> ids;
    std::lock_guard<std::mutex> lock(b.log->m);
    for (auto& [peer, f] : b.log->frames)
      if (auto* c = std::get_if<msg::cancel_request>(&f->content)) ids.push_back(c->request_id);
    return ids;
  };
  std::vector<uint64_t> first = run("1"), second = run("2");
  EXPECT_EQ(first, second);
  EXPECT_LT(first.size(), 50u);
}

TEST_F(network_faults_test, DuplicateDeliversTwice) {
  net_node a, b;
  make_pair(a, b);
  call(a, net_faults_atom_v, rules({{"cancel", fault_action::duplicate, 1.0, 0}}));
  send(a, "b", make_frame_ptr(msg::cancel_request{5}));
  send(a, "b", make_frame_ptr(msg::seq_free{{1}}));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() >= 3; }));
  std::lock_guard<std::mutex> lock(b.log->m);
  ASSERT_EQ(b.log->frames.size(), 3u);
  EXPECT_EQ(std::get<msg::cancel_request>(b.log->frames[0].second->content).request_id, 5u);
  EXPECT_EQ(std::get<msg::cancel_request>(b.log->frames[1].second->content).request_id, 5u);
  EXPECT_TRUE(std::holds_alternative<msg::seq_free>(b.log->frames[2].second->content));
  EXPECT_EQ(stats(a).fault_duplicated, 1u);
}

TEST_F(network_faults_test, CorruptFrameDropsTheLinkWithoutCrashing) {
  net_node a, b;
  make_pair(a, b);
  send(a, "b", make_frame_ptr(msg::cancel_request{1}));
  call(a, net_faults_atom_v, rules({{"seq_free", fault_action::corrupt, 1.0, 0}}));
  send(a, "b", make_frame_ptr(msg::seq_free{{1, 2}}));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.down_of("a"); }));
  ASSERT_TRUE(a.log->wait([](event_log& l) { return l.down_of("b"); }));
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    EXPECT_EQ(b.log->frames.size(), 1u);  // the good frame before; the corrupt one never reaches the sink
    EXPECT_NE(b.log->downs[0].reason.find("bad frame"), std::string::npos) << b.log->downs[0].reason;
  }
  net_stats sb = stats(b);
  EXPECT_EQ(sb.bad_frames, 1u);
  EXPECT_EQ(stats(a).fault_corrupted, 1u);
  // Both nodes live on: clear the faults and reconnect.
  call(a, net_faults_atom_v, fault_config{});
  ASSERT_EQ(connect(a, "b", b.port), std::optional<std::string>("b"));
  send(a, "b", make_frame_ptr(msg::seq_free{{3}}));
  EXPECT_TRUE(b.log->wait([](event_log& l) { return l.n_frames("seq_free") == 1; }));
}

TEST_F(network_faults_test, DelayedFrameIsOvertaken) {
  net_node a, b;
  make_pair(a, b);
  call(a, net_faults_atom_v, rules({{"cancel", fault_action::delay, 1.0, 200}}));
  auto t0 = clock_type::now();
  send(a, "b", make_frame_ptr(msg::cancel_request{1}));
  send(a, "b", make_frame_ptr(msg::seq_free{{4}}));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() >= 2; }));
  std::lock_guard<std::mutex> lock(b.log->m);
  EXPECT_TRUE(std::holds_alternative<msg::seq_free>(b.log->frames[0].second->content));
  EXPECT_TRUE(std::holds_alternative<msg::cancel_request>(b.log->frames[1].second->content));
  EXPECT_GE(b.log->frame_times[1] - t0, 190ms);
  EXPECT_LT(b.log->frame_times[0] - t0, 190ms);
}

TEST_F(network_faults_test, DisconnectFaultEndsTheLink) {
  net_node a, b;
  make_pair(a, b);
  call(a, net_faults_atom_v, rules({{"error", fault_action::disconnect, 1.0, 0}}));
  send(a, "b", make_frame_ptr(msg::error_report{1, "x", "y"}));
  ASSERT_TRUE(a.log->wait([](event_log& l) { return l.down_of("b"); }));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.down_of("a"); }));
  std::lock_guard<std::mutex> lock(a.log->m);
  EXPECT_EQ(a.log->downs[0].reason, "fault: disconnect");
  EXPECT_TRUE(b.log->frames.empty());
  EXPECT_EQ(stats(a).fault_disconnected, 1u);
}

TEST_F(network_faults_test, DroppingAllHeartbeatsLooksLikeALostPeer) {
  net_node a, b;
  make_pair(a, b);
  call(a, net_faults_atom_v, rules({{"heartbeat", fault_action::drop, 1.0, 0}}));
  EXPECT_TRUE(b.log->wait([](event_log& l) { return l.down_of("a"); }, 3000ms));
  std::lock_guard<std::mutex> lock(b.log->m);
  EXPECT_EQ(b.log->downs[0].reason, "heartbeat timeout");
}

TEST_F(network_faults_test, RateLimitShapesTrafficAndBandwidthIsMeasured) {
  net_node a, b;
  make_pair(a, b);
  const uint64_t rate = 2'000'000;  // bytes/s
  call(a, net_rate_atom_v, std::string("b"), rate);
  uint64_t bytes = 0;
  const int n = 6;
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    frame_ptr f = make_frame_ptr(sample_micro_batch(i, 64, 1024));  // 256 KiB
    bytes += msg::encode(*f).size() + 4;
    send(a, "b", f);
  }
  ASSERT_TRUE(b.log->wait([&](event_log& l) { return l.frames.size() >= static_cast<size_t>(n); }, 10000ms));
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double expect = static_cast<double>(bytes) / static_cast<double>(rate);  // ~0.79 s
  EXPECT_GT(secs, 0.8 * expect);
  EXPECT_LT(secs, 3.0 * expect);
  const net_stats sb = stats(b), sa = stats(a);
  const link_stats* in = link_to(sb, "a");
  const link_stats* out = link_to(sa, "b");
  ASSERT_TRUE(in && out);
  EXPECT_EQ(out->rate_limit, rate);
  EXPECT_GT(in->bandwidth_in, 0.5 * static_cast<double>(rate)) << in->bandwidth_in;
  EXPECT_LT(in->bandwidth_in, 2.0 * static_cast<double>(rate)) << in->bandwidth_in;
  // The link stayed up: heartbeats went through the same bucket.
  EXPECT_FALSE(b.log->down_of("a"));
  // Lifting the limit releases traffic at full speed.
  call(a, net_rate_atom_v, std::string(""), uint64_t{0});
  auto t1 = clock_type::now();
  for (int i = 0; i < n; ++i) send(a, "b", make_frame_ptr(sample_micro_batch(i, 64, 1024)));
  ASSERT_TRUE(b.log->wait([&](event_log& l) { return l.frames.size() >= 2u * n; }));
  EXPECT_LT(std::chrono::duration<double>(clock_type::now() - t1).count(), 0.5 * expect);
}

TEST_F(network_faults_test, SlowLargeFrameKeepsTheLinkAlive) {
  net_node a, b;
  make_pair(a, b);  // heartbeat timeout 400 ms
  call(a, net_rate_atom_v, std::string("b"), uint64_t{1'000'000});
  frame_ptr f = make_frame_ptr(sample_micro_batch(1, 256, 1024));  // 1 MiB: ~1 s on the wire, heartbeats behind it
  auto t0 = clock_type::now();
  send(a, "b", f);
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() == 1; }, 5000ms));
  EXPECT_GT(clock_type::now() - t0, 800ms);
  EXPECT_FALSE(b.log->down_of("a"));
  EXPECT_FALSE(a.log->down_of("b"));
  std::lock_guard<std::mutex> lock(b.log->m);
  EXPECT_TRUE(same_frame(*b.log->frames[0].second, *f));
}

TEST_F(network_faults_test, LargeFramesAreReadInChunksAndLimitIsEnforced) {
  network_config cb = fast_config("b");
  cb.read_chunk_bytes = 64 * 1024;
  cb.max_frame_bytes = 3 << 20;
  net_node b = make_node(cb);
  net_node a = make_node(fast_config("a"));
  ASSERT_TRUE(connect(a, "b", b.port).has_value());
  frame_ptr big = make_frame_ptr(sample_micro_batch(1, 512, 1024));  // 2 MiB: 32 chunks
  send(a, "b", big);
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() == 1; }));
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    EXPECT_TRUE(same_frame(*b.log->frames[0].second, *big));
  }
  frame_ptr too_big = make_frame_ptr(sample_micro_batch(2, 1024, 1024));  // 4 MiB > 3 MiB limit
  send(a, "b", too_big);
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.down_of("a"); }));
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    EXPECT_NE(b.log->downs[0].reason.find("over the limit"), std::string::npos) << b.log->downs[0].reason;
  }
  EXPECT_EQ(stats(b).oversize_frames, 1u);
}

}  // namespace
}  // namespace lime::test
