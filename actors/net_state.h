// Internal state of the network actor (a CAF I/O broker): links, handshake, framing, heartbeats, shaping and fault
// injection. Touched only by the network actor's own thread (the middleman's I/O loop). See network_actor.h.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/response_promise.hpp>
#include <caf/result.hpp>
#include <spdlog/logger.h>

#include "actors/frame_ptr.h"
#include "actors/net_faults.h"
#include "actors/network_types.h"
#include "actors/type_ids.h"

namespace lime::net {

// An encoded frame on its way out; the 4-byte little-endian length prefix is produced on the fly.
struct out_frame {
  std::shared_ptr<const std::vector<uint8_t>> body;  // codec bytes
  uint64_t done = 0;                                 // bytes of (prefix + body) already written
  uint64_t total() const { return 4 + body->size(); }
};

struct link {
  caf::io::connection_handle hdl;
  uint64_t serial = 0;  // unique per link (socket handles are reused); timers carry it
  bool outbound = false;
  std::string address;  // "host:port"
  steady_time opened{}, last_rx{};
  bool overdue = false;  // silent past the timeout at the last tick (lost if still so at the next)

  // handshake
  std::vector<uint8_t> nonce;  // ours, [32], sent in Hello
  std::string expected_peer;   // outbound: the name connect() asked for ("" = any)
  bool hello_in = false, authed = false;
  std::string peer;            // the name the peer claims (valid once hello_in)
  msg::peer_role role = msg::peer_role::node;
  std::vector<uint8_t> peer_nonce;
  std::vector<caf::response_promise> waiters;  // connect() requests, answered at authentication or refusal

  // receiving: a 4-byte prefix, then the body in pieces of at most read_chunk_bytes
  bool rx_body = false;
  uint64_t rx_len = 0;
  std::vector<uint8_t> rx_buf;  // body so far, when it came in more than one piece
  steady_time rx_start{};

  // sending
  token_bucket bucket;
  std::deque<out_frame> queue;  // held back by the rate limit
  uint64_t queued = 0;          // bytes in queue not yet written
  bool pump_pending = false;

  // stats
  uint64_t bytes_in = 0, bytes_out = 0, frames_in = 0, frames_out = 0;
  bandwidth_window bw;
  int64_t rtt_nanos = -1;
  uint64_t hb_seq = 0;
};

// A frame held back by a delay fault.
struct delayed_frame {
  int64_t hdl_id = 0;
  uint64_t serial = 0;
  std::shared_ptr<const std::vector<uint8_t>> body;
  bool duplicate = false;
};

class network_state {
 public:
  static constexpr uint64_t k_echo_bit = 1ull << 63;  // heartbeat sequence bit marking an echo (RTT probe reply)

  void init(caf::io::broker* self, network_config cfg);

  // commands (see network_actor.h)
  caf::result<uint16_t> listen(const std::string& host, uint16_t port);
  caf::result<std::string> connect(const std::string& peer, const std::string& host, uint16_t port);
  void send(const std::string& peer, const frame_ptr& f);
  void broadcast(const frame_ptr& f);
  void set_sink(caf::actor sink) { sink_ = std::move(sink); }
  net_stats stats();
  void set_faults(const fault_config& cfg);
  void set_rate(const std::string& peer, uint64_t bytes_per_sec);
  void set_paused(bool on);
  void close_peer(const std::string& peer);

  // broker events and timers
  void on_accept(caf::io::connection_handle h);
  void on_data(caf::io::connection_handle h, const std::vector<char>& buf);
  void on_closed(caf::io::connection_handle h);
  void on_tick();
  void on_pump(int64_t hdl_id, uint64_t serial);
  void on_delayed(uint64_t id);

 private:
  link* find(int64_t hdl_id);
  link* find_peer(const std::string& peer);
  link* open_link(caf::io::connection_handle h, bool outbound);
  steady_time now() const;

  // handshake and frames (net_rx.cpp)
  void on_frame(link& l, msg::frame&& f);
  void on_hello(link& l, msg::hello&& h);
  void on_auth(link& l, const msg::auth& a);
  void on_heartbeat(link& l, const msg::heartbeat& hb);
  void authenticated(link& l);
  void fail(link& l, const std::string& reason);  // refuse before authentication, drop after
  void refuse(link& l, const std::string& reason);
  void drop(link& l, const std::string& reason);
  void close_quietly(link& l);

  // sending (net_tx.cpp)
  void send_frame(link& l, const msg::frame& f);
  void enqueue(link& l, std::shared_ptr<const std::vector<uint8_t>> body);
  void pump(link& l);
  void write_part(link& l, out_frame& of, uint64_t n);

  caf::io::broker* self_ = nullptr;
  network_config cfg_;
  std::shared_ptr<spdlog::logger> log_;
  caf::actor sink_;
  std::map<int64_t, link> links_;           // by connection handle id
  std::map<std::string, int64_t> peers_;    // authenticated peer name -> handle id
  std::map<uint64_t, delayed_frame> delayed_;
  fault_injector faults_;
  uint64_t default_rate_ = 0;               // applied to new links
  uint64_t next_serial_ = 1, next_delay_id_ = 1;
  bool paused_ = false;
  uint16_t listen_port_ = 0;
  net_stats counters_;                      // the node-wide counters (links filled in by stats())
};

}  // namespace lime::net
