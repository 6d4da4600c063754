// Network actor on real loopback sockets: handshake, ordered delivery of every frame kind, refusal of wrong secrets
// and hostile bytes, heartbeat loss detection, stats, and frame_ptr's CAF serialization.
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <random>
#include <thread>

#include "actors/net_handshake.h"
#include "tests/actors/network_test_util.h"

namespace lime::test {
namespace {

using network_test = network_fixture;

std::vector<frame_ptr> mixed_frames() {
  std::vector<frame_ptr> out;
  out.push_back(make_frame_ptr(sample_micro_batch(1, 32, 1024), 3));  // 128 KiB of activations
  msg::sampled_tokens st;
  st.batch_id = 1;
  st.tokens = {{0, 17, 1234, 0x1111}, {2, 9, 99, 0x2222}};
  out.push_back(make_frame_ptr(st, 3));
  out.push_back(make_frame_ptr(msg::memory_pressure{"b", 1000, 4000, msg::pressure_level::high}, 3));
  msg::generation_request gr;
  gr.request_id = 77;
  gr.messages = {{"user", "hello \xe2\x9c\x93"}};
  gr.n_predict = 16;
  out.push_back(make_frame_ptr(gr, 3));
  out.push_back(make_frame_ptr(msg::token_stream{77, {5, 6, 7}, "abc"}, 3));
  out.push_back(make_frame_ptr(msg::seq_free{{1, 2, 3}}, 3));
  out.push_back(make_frame_ptr(sample_micro_batch(2, 3, 64), 4));
  msg::micro_batch_msg tokens_batch;  // first stage: token ids, no activations
  tokens_batch.batch_id = 3;
  tokens_batch.batch.add(15043, 0, 0, false);
  tokens_batch.batch.add(3186, 1, 0, true);
  tokens_batch.sampling.push_back(msg::seq_sampling{});  // one per row with want_logits
  out.push_back(make_frame_ptr(tokens_batch, 4));
  return out;
}

TEST_F(network_test, HandshakeDeliversFramesIntactAndInOrder) {
  net_node a, b;
  make_pair(a, b);
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    ASSERT_EQ(b.log->ups.size(), 1u);
    EXPECT_EQ(b.log->ups[0].peer, "a");
    EXPECT_EQ(b.log->ups[0].role, msg::peer_role::node);
    EXPECT_EQ(a.log->ups[0].peer, "b");
  }
  std::vector<frame_ptr> sent = mixed_frames();
  for (int round = 0; round < 3; ++round)
    for (const frame_ptr& f : sent) send(a, "b", f);
  const size_t total = sent.size() * 3;
  ASSERT_TRUE(b.log->wait([&](event_log& l) { return l.frames.size() >= total; }));
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    ASSERT_EQ(b.log->frames.size(), total);  // heartbeats are not forwarded
    for (size_t i = 0; i < total; ++i) {
      EXPECT_EQ(b.log->frames[i].first, "a");
      EXPECT_TRUE(same_frame(*b.log->frames[i].second, *sent[i % sent.size()])) << "frame " << i;
    }
    const auto& mb = std::get<msg::micro_batch_msg>(b.log->frames[0].second->content);
    const auto& want = std::get<msg::micro_batch_msg>(sent[0]->content);
    ASSERT_EQ(mb.batch.embd.size(), 32u * 1024u);
    EXPECT_EQ(std::memcmp(mb.batch.embd.data(), want.batch.embd.data(), mb.batch.embd.size() * sizeof(float)), 0);
    EXPECT_EQ(b.log->frames[0].second->epoch, 3u);
  }
  // The other direction, and broadcast.
  send(b, "a", make_frame_ptr(msg::cancel_request{5}));
  caf::anon_send(b.net, net_broadcast_atom_v, make_frame_ptr(msg::cancel_request{6}));
  ASSERT_TRUE(a.log->wait([](event_log& l) { return l.frames.size() >= 2; }));
  {
    std::lock_guard<std::mutex> lock(a.log->m);
    EXPECT_EQ(std::get<msg::cancel_request>(a.log->frames[0].second->content).request_id, 5u);
    EXPECT_EQ(std::get<msg::cancel_request>(a.log->frames[1].second->content).request_id, 6u);
  }
  // A send to an unknown peer is dropped and counted, not fatal.
  send(a, "nobody", make_frame_ptr(msg::cancel_request{7}));
  EXPECT_EQ(stats(a).send_unknown_peer, 1u);
}

TEST_F(network_test, StatsCountBytesBandwidthAndHeartbeatRtt) {
  net_node a, b;
  make_pair(a, b);
  uint64_t payload = 0;
  for (int i = 0; i < 8; ++i) {
    frame_ptr f = make_frame_ptr(sample_micro_batch(i, 64, 1024));  // 256 KiB each
    payload += msg::encode(*f).size() + 4;
    send(a, "b", f);
  }
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() >= 8; }));
  // Wait for at least one heartbeat round trip on a's side.
  net_stats sa;
  auto deadline = clock_type::now() + 3s;
  do {
    sa = stats(a);
    const link_stats* l = link_to(sa, "b");
    if (l && l->rtt_nanos > 0) break;
    std::this_thread::sleep_for(20ms);
  } while (clock_type::now() < deadline);
  net_stats sb = stats(b);
  const link_stats* ab = link_to(sa, "b");
  const link_stats* ba = link_to(sb, "a");
  ASSERT_TRUE(ab && ba);
  EXPECT_EQ(sa.links.size(), 1u);
  EXPECT_TRUE(ab->outbound);
  EXPECT_FALSE(ba->outbound);
  EXPECT_GE(ab->bytes_out, payload);
  EXPECT_GE(ba->bytes_in, payload);
  EXPECT_LT(ba->bytes_in, payload + 64 * 1024);  // handshake + heartbeats are small
  EXPECT_GE(ab->frames_out, 8u + 2u);             // hello + auth + frames (+ heartbeats)
  EXPECT_GE(ba->frames_in, 8u + 2u);
  EXPECT_GT(ba->bandwidth_in, 1e6);               // loopback: far above 1 MB/s, below memory bandwidth
  EXPECT_LT(ba->bandwidth_in, 1e12);
  EXPECT_EQ(ab->bandwidth_in, ab->bandwidth_in);  // not NaN
  EXPECT_GT(ab->rtt_nanos, 0);
  EXPECT_LT(ab->rtt_nanos, 1000000000);
  EXPECT_EQ(sb.accepted, 1u);
  EXPECT_EQ(sa.connected, 1u);
  EXPECT_EQ(sb.listen_port, b.port);
}

TEST_F(network_test, WrongSecretIsRefusedAndGoodPeerStaysUp) {
  net_node a, b;
  make_pair(a, b);
  net_node c = make_node(fast_config("c", "not-the-secret"));
  std::string why;
  EXPECT_FALSE(connect(c, "b", b.port, &why).has_value());
  EXPECT_NE(why.find("refused"), std::string::npos) << why;
  ASSERT_TRUE(b.log->wait([](event_log& l) { return !l.refused.empty(); }));
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    EXPECT_EQ(b.log->refused[0].peer, "c");
    EXPECT_EQ(b.log->refused[0].reason, "bad mac");
    EXPECT_EQ(b.log->ups.size(), 1u);  // only a
  }
  EXPECT_TRUE(c.log->wait([](event_log& l) { return !l.refused.empty(); }));
  EXPECT_GE(stats(b).refused, 1u);
  send(a, "b", make_frame_ptr(msg::cancel_request{1}));
  EXPECT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() == 1; }));
  EXPECT_EQ(stats(b).links.size(), 1u);
}

TEST_F(network_test, EmptySecretStillAuthenticatesAndWrongNameIsRefused) {
  net_node b = make_node(fast_config("b", ""));
  net_node a = make_node(fast_config("a", ""));
  EXPECT_EQ(connect(a, "b", b.port), std::optional<std::string>("b"));
  net_node d = make_node(fast_config("d", ""));
  std::string why;
  EXPECT_FALSE(connect(d, "someone-else", b.port, &why).has_value());  // b is not who d expected
  EXPECT_NE(why.find("expected peer"), std::string::npos) << why;
}

// Hostile raw clients: each must be disconnected, and b keeps serving a.
TEST_F(network_test, GarbageClientsAreDisconnectedAndNodeKeepsServing) {
  net_node a, b;
  make_pair(a, b);
  std::mt19937 rng(1234);
  {  // random bytes
    raw_client c(b.port);
    ASSERT_TRUE(c.ok());
    std::vector<unsigned char> junk(70000);
    for (auto& x : junk) x = static_cast<unsigned char>(rng());
    junk[3] = 0x10;  // a length prefix of ~256 MiB: over the pre-authentication limit
    c.send_bytes(junk.data(), junk.size());
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a huge length prefix
    raw_client c(b.port);
    ASSERT_TRUE(c.ok());
    c.send_prefix(0xfffffff0u);
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a zero length
    raw_client c(b.port);
    c.send_prefix(0);
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a valid length with bytes that are not Cap'n Proto
    raw_client c(b.port);
    c.send_prefix(64);
    std::vector<unsigned char> junk(64, 0xab);
    c.send_bytes(junk.data(), junk.size());
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a valid frame of a future protocol version
    raw_client c(b.port);
    msg::frame f;
    f.version = msg::k_protocol_version + 1;
    f.content = msg::hello{"future", msg::peer_role::node, std::vector<uint8_t>(32, 1)};
    c.send_frame(f);
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a valid frame, but not a hello
    raw_client c(b.port);
    msg::frame f;
    f.content = msg::cancel_request{9};
    c.send_frame(f);
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a hello with a short nonce
    raw_client c(b.port);
    msg::frame f;
    f.content = msg::hello{"shorty", msg::peer_role::client, std::vector<uint8_t>(5, 1)};
    c.send_frame(f);
    EXPECT_TRUE(c.wait_closed());
  }
  {  // a truncated frame, then the client hangs up mid-body
    raw_client c(b.port);
    c.send_prefix(1000);
    c.send_bytes("abc", 3);
  }
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.refused.size() >= 8; }));
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    auto has = [&](const std::string& needle) {
      for (auto& r : b.log->refused)
        if (r.reason.find(needle) != std::string::npos) return true;
      return false;
    };
    EXPECT_TRUE(has("over the limit"));
    EXPECT_TRUE(has("empty frame"));
    EXPECT_TRUE(has("bad frame"));
    EXPECT_TRUE(has("protocol version"));
    EXPECT_TRUE(has("frame before authentication: cancel"));
    EXPECT_TRUE(has("bad nonce length"));
    EXPECT_TRUE(has("connection closed during handshake"));
    EXPECT_TRUE(b.log->downs.empty());
  }
  net_stats sb = stats(b);
  EXPECT_GE(sb.oversize_frames, 3u);
  EXPECT_GE(sb.bad_frames, 1u);
  EXPECT_EQ(sb.links.size(), 1u);
  send(a, "b", make_frame_ptr(msg::cancel_request{1}));
  EXPECT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() == 1; }));
}

TEST_F(network_test, SilentClientIsRefusedAfterHandshakeTimeout) {
  network_config cfg = fast_config("b");
  cfg.handshake_timeout = 300ms;
  net_node b = make_node(cfg);
  raw_client c(b.port);
  ASSERT_TRUE(c.ok());
  auto t0 = clock_type::now();
  EXPECT_TRUE(c.wait_closed(3000ms));
  EXPECT_GE(clock_type::now() - t0, 250ms);
  ASSERT_TRUE(b.log->wait([](event_log& l) { return !l.refused.empty(); }));
  std::lock_guard<std::mutex> lock(b.log->m);
  EXPECT_EQ(b.log->refused[0].reason, "handshake timeout");
}

// A client that authenticates by hand (an independent implementation of the handshake), then goes silent.
TEST_F(network_test, AuthenticatedPeerThatGoesSilentIsDeclaredLost) {
  network_config cfg = fast_config("b");
  cfg.heartbeat_interval = 50ms;
  cfg.heartbeat_timeout = 300ms;
  net_node b = make_node(cfg);
  raw_client c(b.port);
  ASSERT_TRUE(c.ok());
  std::optional<msg::frame> hello = c.read_frame();
  ASSERT_TRUE(hello.has_value());
  const auto& h = std::get<msg::hello>(hello->content);
  EXPECT_EQ(h.node_name, "b");
  ASSERT_EQ(h.nonce.size(), 32u);
  msg::frame mine;
  mine.content = msg::hello{"mute", msg::peer_role::client, std::vector<uint8_t>(32, 7)};
  ASSERT_TRUE(c.send_frame(mine));
  msg::frame proof;
  proof.content = msg::auth{net::handshake_mac(bytes_of("s3cret"), h.nonce, "mute")};
  ASSERT_TRUE(c.send_frame(proof));
  // b's auth answers our nonce: check it with the secret.
  std::optional<msg::frame> theirs = c.read_frame();
  ASSERT_TRUE(theirs.has_value());
  EXPECT_EQ(std::get<msg::auth>(theirs->content).mac,
            net::handshake_mac(bytes_of("s3cret"), std::vector<uint8_t>(32, 7), "b"));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return !l.ups.empty(); }));
  // Heartbeats from b arrive while we stay silent.
  std::optional<msg::frame> hb = c.read_frame();
  ASSERT_TRUE(hb.has_value());
  EXPECT_TRUE(std::holds_alternative<msg::heartbeat>(hb->content));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return !l.downs.empty(); }, 3000ms));
  std::lock_guard<std::mutex> lock(b.log->m);
  EXPECT_EQ(b.log->ups[0].peer, "mute");
  EXPECT_EQ(b.log->ups[0].role, msg::peer_role::client);
  EXPECT_EQ(b.log->downs[0].peer, "mute");
  EXPECT_EQ(b.log->downs[0].reason, "heartbeat timeout");
  auto took = b.log->down_times[0] - b.log->up_times[0];
  EXPECT_GE(took, 280ms);  // not before the timeout ...
  EXPECT_LE(took, 800ms);  // ... and within timeout + a tick + scheduling slack
}

TEST_F(network_test, PausedNodeIsDeclaredLostByItsPeer) {
  net_node a, b;
  make_pair(a, b);
  call(a, net_pause_atom_v, true);
  auto t0 = clock_type::now();
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.down_of("a"); }, 3000ms));
  EXPECT_LE(clock_type::now() - t0, 1500ms);
  {
    std::lock_guard<std::mutex> lock(b.log->m);
    EXPECT_EQ(b.log->downs[0].reason, "heartbeat timeout");
  }
  ASSERT_TRUE(a.log->wait([](event_log& l) { return l.down_of("b"); }, 3000ms));
  EXPECT_EQ(stats(b).heartbeat_timeouts, 1u);
  EXPECT_TRUE(stats(a).links.empty());
  // Resumed, a can connect again.
  call(a, net_pause_atom_v, false);
  EXPECT_EQ(connect(a, "b", b.port), std::optional<std::string>("b"));
}

TEST_F(network_test, CloseAndReconnectGivePeerEvents) {
  net_node a, b;
  make_pair(a, b);
  EXPECT_EQ(connect(a, "b", b.port), std::optional<std::string>("b"));  // already linked: no second connection
  EXPECT_EQ(stats(a).connected, 1u);
  call(a, net_close_atom_v, std::string("b"));
  ASSERT_TRUE(a.log->wait([](event_log& l) { return l.down_of("b"); }));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.down_of("a"); }));
  {
    std::lock_guard<std::mutex> lock(a.log->m);
    EXPECT_EQ(a.log->downs[0].reason, "closed locally");
  }
  ASSERT_EQ(connect(a, "b", b.port), std::optional<std::string>("b"));
  ASSERT_TRUE(b.log->wait([](event_log& l) { return l.ups.size() == 2; }));
  send(a, "b", make_frame_ptr(msg::cancel_request{3}));
  EXPECT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() == 1; }));
}

TEST_F(network_test, SimultaneousConnectsConvergeOnOneLink) {
  net_node a = make_node(fast_config("a"));
  net_node b = make_node(fast_config("b"));
  caf::scoped_actor self{sys};
  int ok = 0;
  auto h1 = self->request(a.net, 5s, net_connect_atom_v, std::string("b"), std::string("127.0.0.1"), b.port);
  auto h2 = self->request(b.net, 5s, net_connect_atom_v, std::string("a"), std::string("127.0.0.1"), a.port);
  h1.receive([&](const std::string&) { ++ok; }, [](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
  h2.receive([&](const std::string&) { ++ok; }, [](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
  EXPECT_EQ(ok, 2);
  auto one_link = [&](const net_node& n) {
    auto deadline = clock_type::now() + 2s;
    while (clock_type::now() < deadline) {
      if (stats(n).links.size() == 1) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  EXPECT_TRUE(one_link(a));
  EXPECT_TRUE(one_link(b));
  std::this_thread::sleep_for(200ms);  // both sides settled on the same link
  send(a, "b", make_frame_ptr(msg::cancel_request{1}));
  send(b, "a", make_frame_ptr(msg::cancel_request{2}));
  EXPECT_TRUE(b.log->wait([](event_log& l) { return l.frames.size() == 1; }));
  EXPECT_TRUE(a.log->wait([](event_log& l) { return l.frames.size() == 1; }));
  std::lock_guard<std::mutex> lock(a.log->m);
  EXPECT_EQ(a.log->ups.size(), 1u);
  EXPECT_TRUE(a.log->downs.empty());
}

TEST_F(network_test, FramePtrSerializesThroughTheCodec) {
  frame_ptr in = make_frame_ptr(sample_micro_batch(9, 4, 16), 11);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  ASSERT_FALSE(sink(in));
  frame_ptr out;
  caf::binary_deserializer source{sys, buf};
  ASSERT_FALSE(source(out));
  ASSERT_TRUE(out);
  EXPECT_TRUE(same_frame(*in, *out));
  // Corrupt bytes give an error, not an exception.
  const size_t capnp_at = buf.size() - msg::encode(*in).size();  // after CAF's sequence length
  buf[capnp_at + 3] = static_cast<char>(buf[capnp_at + 3] ^ 0x7f);   // segment count: absurd
  frame_ptr bad;
  caf::binary_deserializer source2{sys, buf};
  EXPECT_TRUE(static_cast<bool>(source2(bad)));
  EXPECT_EQ(caf::to_string(caf::make_message(in)).find("micro_batch") != std::string::npos, true);
}

}  // namespace
}  // namespace lime::test
