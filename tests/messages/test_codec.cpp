// Codec: every frame kind round-trips; malformed, truncated, inconsistent or foreign-version bytes are errors,
// never crashes.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "messages/codec.h"

namespace lime::msg {
namespace {

micro_batch_msg sample_batch(int32_t first_layer) {
  micro_batch_msg m;
  m.batch_id = 77;
  m.first_layer = first_layer;
  m.n_embd = first_layer == 0 ? 0 : 4;
  for (int i = 0; i < 3; ++i) {
    m.batch.pos.push_back(10 + i);
    m.batch.seq.push_back(i == 2 ? 9 : 5);
    m.batch.want_logits.push_back(i != 0);
    if (first_layer == 0) m.batch.tokens.push_back(100 + i);
  }
  if (first_layer > 0)
    for (int i = 0; i < 12; ++i) m.batch.embd.push_back(i == 5 ? -0.0f : 0.1f * static_cast<float>(i) - 0.37f);
  for (int row : {1, 2}) {
    seq_sampling s;
    s.seq_id = m.batch.seq[static_cast<size_t>(row)];
    s.params.temperature = 0.7f;
    s.params.seed = 0xdeadbeefcafeull + static_cast<uint64_t>(row);
    s.checksum = 0x1234567890abcdefull;
    s.history = {1, 2, 3};
    s.ignore_eog = row == 2;
    m.sampling.push_back(s);
  }
  return m;
}

frame wrap(body b, uint64_t epoch = 3) {
  frame f;
  f.epoch = epoch;
  f.content = std::move(b);
  return f;
}

TEST(codec, micro_batch_round_trips_bit_exact) {
  for (int32_t layer : {0, 2}) {
    frame f = wrap(sample_batch(layer));
    auto bytes = encode(f);
    auto back = decode(bytes.data(), bytes.size());
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->epoch, 3u);
    const auto& m = std::get<micro_batch_msg>(back->content);
    const auto& o = std::get<micro_batch_msg>(f.content);
    EXPECT_EQ(m.batch_id, o.batch_id);
    EXPECT_EQ(m.first_layer, o.first_layer);
    EXPECT_EQ(m.batch.pos, o.batch.pos);
    EXPECT_EQ(m.batch.seq, o.batch.seq);
    EXPECT_EQ(m.batch.tokens, o.batch.tokens);
    EXPECT_EQ(m.batch.want_logits, o.batch.want_logits);
    ASSERT_EQ(m.batch.embd.size(), o.batch.embd.size());
    if (!o.batch.embd.empty()) {
      EXPECT_EQ(0, std::memcmp(m.batch.embd.data(), o.batch.embd.data(), o.batch.embd.size() * sizeof(float)));
    }
    ASSERT_EQ(m.sampling.size(), 2u);
    EXPECT_EQ(m.sampling[1].params.seed, o.sampling[1].params.seed);
    EXPECT_EQ(m.sampling[1].params.temperature, 0.7f);
    EXPECT_EQ(m.sampling[0].checksum, o.sampling[0].checksum);
    EXPECT_EQ(m.sampling[0].history, o.sampling[0].history);
    EXPECT_TRUE(m.sampling[1].ignore_eog);
    EXPECT_STREQ(frame_kind(*back), "micro_batch");
  }
}

TEST(codec, every_other_kind_round_trips) {
  std::vector<body> bodies = {
      hello{"node-a", peer_role::client, {1, 2, 3, 4}},
      auth{{9, 8, 7}},
      heartbeat{5, 123456789},
      sampled_tokens{4, {{1, 2, 3, 0xffffffffffffffffull}, {7, 8, 9, 1}}},
      prefetch_request{1, 3, 6},
      prefetch_ready{1, false, "disk gone"},
      memory_pressure{"n1", 10, 20, pressure_level::high, 30, 40, 50, 60},
      assignment{{{0, 3, "a"}, {3, 5, "b"}}, {{"a", "127.0.0.1", 4000}, {"b", "::1", 4001}}, 42, "a"},
      node_profile{"b", 1ull << 30, 1e10, 1.1e9, {"b", "127.0.0.1", 4001}, 42},
      generation_request{11, {{"system", "be brief"}, {"user", "héllo ✓"}}, sampling_params{}, 64, true, true, true, 77},
      token_stream{11, {5, 6}, "ab"},
      generation_done{11, "eog", 4, 5, 99, 0.5, 1.5},
      cancel_request{11},
      error_report{11, "context_full", "prompt too long"},
      seq_free{{1, 2, 3}},
      assignment_ack{"b", false, "no memory"},
      status_request{},
      cluster_status{7, "serving", 42, 2, 1, {{"a", "127.0.0.1:4000", "0-3", 1 << 20, 5, 6, 7, 1e6, 1234, true, 8, 9, 10}}, "", 3, 4, "plain"},
  };
  for (const body& b : bodies) {
    frame f = wrap(b, 9);
    auto bytes = encode(f);
    auto back = decode(bytes.data(), bytes.size());
    ASSERT_TRUE(back.ok()) << frame_kind(f) << ": " << back.err().message;
    EXPECT_EQ(back->content.index(), f.content.index());
    EXPECT_EQ(encode(*back), bytes) << frame_kind(f) << " re-encodes to different bytes";
  }
  auto a = decode(encode(wrap(bodies[7])).data(), encode(wrap(bodies[7])).size());
  ASSERT_TRUE(a.ok());
  const auto& as = std::get<assignment>(a->content);
  ASSERT_EQ(as.groups.size(), 2u);
  EXPECT_EQ(as.groups[1].node, "b");
  EXPECT_EQ(as.nodes[1].host, "::1");
  EXPECT_EQ(as.nodes[1].port, 4001);
  auto st = decode(encode(wrap(bodies.back())).data(), encode(wrap(bodies.back())).size());
  ASSERT_TRUE(st.ok());
  const auto& cs = std::get<cluster_status>(st->content);
  ASSERT_EQ(cs.nodes.size(), 1u);
  EXPECT_EQ(cs.nodes[0].groups, "0-3");
  EXPECT_EQ(cs.nodes[0].rtt_nanos, 1234);
  EXPECT_EQ(cs.nodes[0].weight_bytes_streamed, 8u);
  EXPECT_EQ(cs.nodes[0].rss, 9u);
  EXPECT_EQ(cs.nodes[0].peak_rss, 10u);
  auto mp = decode(encode(wrap(bodies[6])).data(), encode(wrap(bodies[6])).size());
  ASSERT_TRUE(mp.ok());
  EXPECT_EQ(std::get<memory_pressure>(mp->content).weight_bytes_resident, 30u);
  EXPECT_EQ(std::get<memory_pressure>(mp->content).weight_bytes_streamed, 40u);
  EXPECT_EQ(std::get<memory_pressure>(mp->content).rss, 50u);
  EXPECT_EQ(std::get<memory_pressure>(mp->content).peak_rss, 60u);
  EXPECT_EQ(cs.replays, 4u);
  auto gr = decode(encode(wrap(bodies[9])).data(), encode(wrap(bodies[9])).size());
  ASSERT_TRUE(gr.ok());
  EXPECT_EQ(std::get<generation_request>(gr->content).checksum_init, 77u);
}

error decode_error(const frame& f) {
  auto bytes = encode(f);
  auto r = decode(bytes.data(), bytes.size());
  EXPECT_FALSE(r.ok()) << frame_kind(f) << " was accepted";
  return r.ok() ? error{} : r.err();
}

TEST(codec, text_with_nul_bytes_round_trips_whole) {
  // A byte token such as <0x00> streams a NUL; a user's message may hold one too.
  const std::string bytes("a\0b\0\xff", 5);
  const auto wire = encode(wrap(token_stream{1, {7}, bytes}));
  auto back = decode(wire.data(), wire.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<token_stream>(back->content).text, bytes);
  generation_request g;
  g.request_id = 2;
  g.messages = {{"user", bytes}};
  const auto wire_g = encode(wrap(g));
  auto gb = decode(wire_g.data(), wire_g.size());
  ASSERT_TRUE(gb.ok());
  ASSERT_EQ(std::get<generation_request>(gb->content).messages.size(), 1u);
  EXPECT_EQ(std::get<generation_request>(gb->content).messages[0].content, bytes);
}

TEST(codec, inconsistent_micro_batches_are_refused) {
  auto m = sample_batch(2);
  m.n_embd = 5;  // activations are 3 x 4
  EXPECT_EQ(decode_error(wrap(m)).code, errc::bad_format);
  m = sample_batch(2);
  m.sampling[0].seq_id = 1234;
  EXPECT_NE(decode_error(wrap(m)).message.find("sequence"), std::string::npos);
  m = sample_batch(2);
  m.sampling.pop_back();
  EXPECT_EQ(decode_error(wrap(m)).code, errc::bad_format);
  m = sample_batch(0);
  m.batch.pos[1] = -4;
  EXPECT_EQ(decode_error(wrap(m)).code, errc::bad_format);
  m = sample_batch(0);
  m.batch.tokens.pop_back();
  EXPECT_EQ(decode_error(wrap(m)).code, errc::bad_format);
  m = sample_batch(2);
  m.n_embd = 0;
  m.batch.embd.clear();
  EXPECT_EQ(decode_error(wrap(m)).code, errc::bad_format);
  assignment gap{{{0, 3, "a"}, {4, 5, "b"}}, {}, 1, "a"};
  EXPECT_NE(decode_error(wrap(gap)).message.find("contiguous"), std::string::npos);
}

TEST(codec, foreign_protocol_version_is_unsupported) {
  frame f = wrap(heartbeat{1, 2});
  f.version = 2;
  auto err = decode_error(f);
  EXPECT_EQ(err.code, errc::unsupported);
  EXPECT_NE(err.message.find("version 2"), std::string::npos);
}

TEST(codec, truncated_and_misaligned_bytes_are_errors) {
  auto bytes = encode(wrap(sample_batch(2)));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode(bytes.data(), n);
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
  }
  decode_limits small;
  small.max_frame_bytes = 64;
  EXPECT_FALSE(decode(bytes.data(), bytes.size(), small).ok());
  EXPECT_FALSE(decode(nullptr, 0).ok());
}

TEST(codec, random_and_corrupted_bytes_never_crash) {
  std::mt19937_64 rng(1);
  auto valid = encode(wrap(sample_batch(2)));
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> b;
    if (i % 2 == 0) {
      b.resize(8 * (1 + rng() % 64));
      for (auto& x : b) x = static_cast<uint8_t>(rng());
    } else {
      b = valid;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    }
    auto r = decode(b.data(), b.size());
    if (r.ok()) {
      ++accepted;
      (void)encode(*r);  // whatever was accepted must be usable
    } else {
      EXPECT_TRUE(r.err().code == errc::bad_format || r.err().code == errc::unsupported);
      EXPECT_EQ(r.err().message.rfind("frame: ", 0), 0u);
    }
  }
  RecordProperty("accepted_mutations", accepted);
}

}  // namespace
}  // namespace lime::msg
