// The network actor's plain parts without sockets: HMAC against RFC 4231, the token bucket, the bandwidth window,
// and the fault injector (rule matching, handshake exclusion, corruption the decoder must reject).
#include <gtest/gtest.h>

#include <cstdio>

#include "actors/net_faults.h"
#include "actors/net_handshake.h"
#include "messages/codec.h"

namespace lime::net {
namespace {

std::string hex(const std::vector<uint8_t>& v) {
  std::string s;
  char b[3];
  for (uint8_t x : v) {
    std::snprintf(b, sizeof b, "%02x", x);
    s += b;
  }
  return s;
}

TEST(net_handshake, MacIsHmacSha256OfNonceThenName) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?" (split as nonce || name).
  std::string key = "Jefe", nonce = "what do ya want ";
  std::vector<uint8_t> mac = handshake_mac(std::vector<uint8_t>(key.begin(), key.end()),
                                           std::vector<uint8_t>(nonce.begin(), nonce.end()), "for nothing?");
  EXPECT_EQ(hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE(handshake_mac_equal(mac, mac));
  std::vector<uint8_t> other = mac;
  other[31] ^= 1;
  EXPECT_FALSE(handshake_mac_equal(mac, other));
  EXPECT_FALSE(handshake_mac_equal(mac, std::vector<uint8_t>(mac.begin(), mac.begin() + 16)));
  // An empty secret is a valid key (HMAC zero-pads keys, so it equals a key of zero bytes) unlike any other key.
  std::vector<uint8_t> n(32, 1);
  EXPECT_EQ(handshake_mac({}, n, "a").size(), 32u);
  EXPECT_EQ(handshake_mac({}, n, "a"), handshake_mac({0}, n, "a"));
  EXPECT_NE(handshake_mac({}, n, "a"), handshake_mac({1}, n, "a"));
  EXPECT_NE(handshake_mac({}, n, "a"), handshake_mac({}, n, "b"));
}

TEST(net_handshake, NoncesAreRandom) {
  auto a = handshake_nonce(), b = handshake_nonce();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), k_nonce_bytes);
  EXPECT_NE(*a, *b);
}

TEST(net_token_bucket, RefillsAtRateUpToBurst) {
  token_bucket tb;
  steady_time t0{};
  tb.set_rate(1'000'000, t0);  // 1 MB/s, burst 20 ms = 20 kB
  EXPECT_EQ(tb.burst(), 20000u);
  EXPECT_EQ(tb.available(t0), 20000u);
  tb.take(20000);
  EXPECT_EQ(tb.available(t0), 0u);
  EXPECT_EQ(tb.available(t0 + std::chrono::milliseconds(5)), 5000u);
  tb.take(5000);
  auto w = tb.wait_for(10000);  // 10 kB at 1 MB/s = 10 ms
  EXPECT_GE(w, std::chrono::microseconds(9990));
  EXPECT_LE(w, std::chrono::microseconds(10010));
  EXPECT_EQ(tb.available(t0 + std::chrono::seconds(10)), 20000u);  // capped at the burst
  tb.set_rate(0, t0);
  EXPECT_FALSE(tb.limited());
}

TEST(net_bandwidth_window, AveragesLargeFramesOnly) {
  bandwidth_window w;
  EXPECT_EQ(w.bytes_per_sec(), 0.0);
  w.add(100, std::chrono::microseconds(1));  // too small to say anything
  EXPECT_EQ(w.bytes_per_sec(), 0.0);
  w.add(1'000'000, std::chrono::milliseconds(10));
  w.add(3'000'000, std::chrono::milliseconds(30));
  EXPECT_DOUBLE_EQ(w.bytes_per_sec(), 1e8);
  for (int i = 0; i < 100; ++i) w.add(2'000'000, std::chrono::milliseconds(1));  // old samples age out
  EXPECT_DOUBLE_EQ(w.bytes_per_sec(), 2e9);
}

TEST(net_fault_injector, MatchesKindsAndSparesTheHandshake) {
  fault_injector fi;
  EXPECT_FALSE(fi.active());
  fi.configure(fault_config{{{"*", fault_action::drop, 1.0, 0}}, 1});
  EXPECT_TRUE(fi.decide("micro_batch").drop);
  EXPECT_TRUE(fi.decide("heartbeat").drop);
  EXPECT_FALSE(fi.decide("hello").drop);
  EXPECT_FALSE(fi.decide("auth").drop);
  fi.configure(fault_config{{{"auth", fault_action::corrupt, 1.0, 0}, {"cancel", fault_action::delay, 1.0, 30},
                             {"cancel", fault_action::duplicate, 1.0, 0}},
                            1});
  EXPECT_TRUE(fi.decide("auth").corrupt);
  fault_decision d = fi.decide("cancel");
  EXPECT_EQ(d.delay_ms, 30u);
  EXPECT_TRUE(d.duplicate);
  EXPECT_FALSE(fi.decide("micro_batch").corrupt);
  EXPECT_EQ(fi.dropped, 2u);
  EXPECT_EQ(fi.corrupted, 1u);
  EXPECT_EQ(fi.delayed, 1u);
  EXPECT_EQ(fi.duplicated, 1u);
  // Disconnect wins over the rest; probability 0 never fires.
  fi.configure(fault_config{{{"x", fault_action::disconnect, 1.0, 0}, {"x", fault_action::duplicate, 1.0, 0},
                             {"y", fault_action::drop, 0.0, 0}},
                            1});
  d = fi.decide("x");
  EXPECT_TRUE(d.disconnect);
  EXPECT_FALSE(d.duplicate);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(fi.decide("y").drop);
}

TEST(net_fault_injector, CorruptionIsAlwaysRejectedByTheDecoder) {
  std::vector<msg::frame> frames(5);
  frames[0].content = msg::heartbeat{1, 2};
  frames[1].content = msg::cancel_request{3};
  frames[2].content = msg::hello{"n", msg::peer_role::node, std::vector<uint8_t>(32, 9)};
  frames[3].content = msg::seq_free{{1, 2, 3}};
  frames[4].content = msg::token_stream{1, {1, 2}, "hi"};
  for (const msg::frame& f : frames) {
    std::vector<uint8_t> b = msg::encode(f);
    ASSERT_TRUE(msg::decode(b.data(), b.size()).ok());
    fault_injector::corrupt(b);
    auto r = msg::decode(b.data(), b.size());
    ASSERT_FALSE(r.ok()) << msg::frame_kind(f);
    EXPECT_EQ(r.err().code, errc::bad_format);
  }
}

}  // namespace
}  // namespace lime::net
