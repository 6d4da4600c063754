// Helpers for the network actor tests: an actor system with lime's types, a sink that records events for polling
// with timeouts, a raw TCP client for hostile-peer tests, and sample frames.
#pragma once
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/network_actor.h"
#include "messages/codec.h"

namespace lime::test {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// What a sink actor saw; written by the sink's thread, read by the test thread.
struct event_log {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<std::string, frame_ptr>> frames;
  std::vector<clock_type::time_point> frame_times;
  std::vector<peer_up_msg> ups;
  std::vector<clock_type::time_point> up_times;
  std::vector<peer_down_msg> downs;
  std::vector<clock_type::time_point> down_times;
  std::vector<peer_refused_msg> refused;

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, timeout, [&] { return pred(*this); });
  }
  size_t n_frames(const char* kind) {
    size_t n = 0;
    for (auto& [peer, f] : frames) n += std::strcmp(msg::frame_kind(*f), kind) == 0;
    return n;
  }
  bool down_of(const std::string& peer) {
    for (auto& d : downs) if (d.peer == peer) return true;
    return false;
  }
};

inline caf::behavior sink_actor(caf::event_based_actor*, std::shared_ptr<event_log> log) {
  auto record = [log](auto&& fn) {
    {
      std::lock_guard<std::mutex> lock(log->m);
      fn(*log);
    }
    log->cv.notify_all();
  };
  return {
      [=](const std::string& peer, const frame_ptr& f) {
        record([&](event_log& l) { l.frames.emplace_back(peer, f); l.frame_times.push_back(clock_type::now()); });
      },
      [=](const peer_up_msg& m) {
        record([&](event_log& l) { l.ups.push_back(m); l.up_times.push_back(clock_type::now()); });
      },
      [=](const peer_down_msg& m) {
        record([&](event_log& l) { l.downs.push_back(m); l.down_times.push_back(clock_type::now()); });
      },
      [=](const peer_refused_msg& m) { record([&](event_log& l) { l.refused.push_back(m); }); },
  };
}

struct caf_config_holder {
  caf::actor_system_config cfg;
  caf_config_holder() {
    lime_init_caf(cfg);
    cfg.set("scheduler.max-threads", 2);
  }
};

struct net_node {
  caf::actor net;
  std::shared_ptr<event_log> log;
  uint16_t port = 0;
  std::string name;
};

inline std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

class network_fixture : public ::testing::Test, protected caf_config_holder {
 protected:
  network_fixture() : sys(cfg) {}
  ~network_fixture() override {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  static network_config fast_config(const std::string& name, const std::string& secret = "s3cret") {
    network_config c;
    c.name = name;
    c.secret = bytes_of(secret);
    c.heartbeat_interval = 50ms;
    c.heartbeat_timeout = 400ms;
    c.handshake_timeout = 2000ms;
    return c;
  }

  // A network actor listening on a free loopback port, with a recording sink.
  net_node make_node(network_config c) {
    net_node n;
    n.name = c.name;
    n.net = spawn_network(sys, std::move(c));
    n.log = std::make_shared<event_log>();
    caf::actor sink = sys.spawn(sink_actor, n.log);
    actors.push_back(n.net);
    actors.push_back(sink);
    caf::scoped_actor self{sys};
    self->request(n.net, 5s, net_sink_atom_v, sink).receive([] {}, [](caf::error& e) { FAIL() << caf::to_string(e); });
    self->request(n.net, 5s, net_listen_atom_v, std::string("127.0.0.1"), uint16_t{0})
        .receive([&](uint16_t p) { n.port = p; }, [](caf::error& e) { FAIL() << caf::to_string(e); });
    return n;
  }

  // connect(from -> to): the peer name on success, std::nullopt (and the error text in *why) on failure.
  std::optional<std::string> connect(const net_node& from, const std::string& peer, uint16_t port,
                                     std::string* why = nullptr) {
    std::optional<std::string> out;
    caf::scoped_actor self{sys};
    self->request(from.net, 5s, net_connect_atom_v, peer, std::string("127.0.0.1"), port)
        .receive([&](const std::string& name) { out = name; },
                 [&](caf::error& e) {
                   if (why) *why = caf::to_string(e);
                 });
    return out;
  }

  net_stats stats(const net_node& n) {
    net_stats s;
    caf::scoped_actor self{sys};
    self->request(n.net, 5s, net_stats_atom_v).receive([&](const net_stats& x) { s = x; },
                                                        [](caf::error& e) { FAIL() << caf::to_string(e); });
    return s;
  }

  static const link_stats* link_to(const net_stats& s, const std::string& peer) {
    for (const link_stats& l : s.links)
      if (l.peer == peer) return &l;
    return nullptr;
  }

  template <class... Ts>
  void call(const net_node& n, Ts&&... xs) {  // a command, waited for
    caf::scoped_actor self{sys};
    self->request(n.net, 5s, std::forward<Ts>(xs)...).receive([] {}, [](caf::error& e) { FAIL() << caf::to_string(e); });
  }

  void send(const net_node& from, const std::string& to, frame_ptr f) {
    caf::anon_send(from.net, net_send_atom_v, to, std::move(f));
  }

  // Two authenticated nodes a -> b.
  void make_pair(net_node& a, net_node& b) {
    b = make_node(fast_config("b"));
    a = make_node(fast_config("a"));
    ASSERT_EQ(connect(a, "b", b.port), std::optional<std::string>("b"));
    ASSERT_TRUE(b.log->wait([](event_log& l) { return !l.ups.empty(); }));
    ASSERT_TRUE(a.log->wait([](event_log& l) { return !l.ups.empty(); }));
  }

  caf::actor_system sys;
  std::vector<caf::actor> actors;
};

// A plain TCP client that speaks (or mangles) the wire format by hand.
class raw_client {
 public:
  explicit raw_client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~raw_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }

  bool send_bytes(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::send(fd_, c, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      c += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  bool send_prefix(uint32_t len) {
    unsigned char p[4] = {static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                          static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 24)};
    return send_bytes(p, 4);
  }
  bool send_frame(const msg::frame& f) {
    std::vector<uint8_t> b = msg::encode(f);
    return send_prefix(static_cast<uint32_t>(b.size())) && send_bytes(b.data(), b.size());
  }

  // Reads exactly n bytes; false on EOF, error or timeout.
  bool read_exact(void* p, size_t n, std::chrono::milliseconds timeout = 3000ms) {
    char* c = static_cast<char*>(p);
    auto deadline = clock_type::now() + timeout;
    while (n > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (left <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      ssize_t r = ::recv(fd_, c, n, 0);
      if (r <= 0) return false;
      c += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  std::optional<msg::frame> read_frame() {
    unsigned char p[4];
    if (!read_exact(p, 4)) return std::nullopt;
    uint32_t len = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
    std::vector<uint8_t> b(len);
    if (!read_exact(b.data(), len)) return std::nullopt;
    auto r = msg::decode(b.data(), b.size());
    if (!r) return std::nullopt;
    return std::move(r).value();
  }
  // True once the server closed the connection (reads and discards until EOF or reset).
  bool wait_closed(std::chrono::milliseconds timeout = 3000ms) {
    auto deadline = clock_type::now() + timeout;
    char buf[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (left <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) return true;
    }
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// --- sample frames -------------------------------------------------------------------------------------------------

inline msg::micro_batch_msg sample_micro_batch(uint64_t id, int32_t rows, int32_t n_embd) {
  msg::micro_batch_msg mb;
  mb.batch_id = id;
  mb.first_layer = 4;
  mb.n_embd = n_embd;
  for (int32_t r = 0; r < rows; ++r) {
    mb.batch.pos.push_back(r);
    mb.batch.seq.push_back(r % 3);
    mb.batch.want_logits.push_back(r == rows - 1 ? 1 : 0);
  }
  mb.batch.embd.resize(static_cast<size_t>(rows) * n_embd);
  uint32_t x = 0x9e3779b9u ^ static_cast<uint32_t>(id);
  for (float& v : mb.batch.embd) {  // xorshift values, including negative zero-ish and large magnitudes
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<float>(static_cast<int32_t>(x)) * 1e-7f;
  }
  msg::seq_sampling s;
  s.seq_id = (rows - 1) % 3;
  s.params.temperature = 0.7f;
  s.params.seed = 42 + id;
  s.checksum = 0xabcdef0123456789ull;
  s.history = {1, 2, 3};
  mb.sampling.push_back(s);
  return mb;
}

// Bytes equality through the codec: the receiver got exactly what was sent.
inline bool same_frame(const msg::frame& x, const msg::frame& y) { return msg::encode(x) == msg::encode(y); }

}  // namespace lime::test
