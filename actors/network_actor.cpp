// The network actor's behavior, its commands, connection events and heartbeat timer. Receiving is in
// actors/net_rx.cpp, sending in actors/net_tx.cpp.
#include "actors/network_actor.h"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/system_messages.hpp>
#include <spdlog/spdlog.h>

#include "actors/net_handshake.h"
#include "actors/net_state.h"

namespace lime {
namespace net {

namespace {

caf::io::receive_policy::config read_prefix() { return caf::io::receive_policy::exactly(4); }

}  // namespace

void network_state::init(caf::io::broker* self, network_config cfg) {
  self_ = self;
  cfg_ = std::move(cfg);
  log_ = spdlog::get("net");
  if (!log_) log_ = spdlog::default_logger();
  counters_.node = cfg_.name;
  self_->delayed_send(self_, cfg_.heartbeat_interval, net_tick_atom_v);
}

steady_time network_state::now() const { return self_->clock().now(); }

link* network_state::find(int64_t hdl_id) {
  auto it = links_.find(hdl_id);
  return it == links_.end() ? nullptr : &it->second;
}

link* network_state::find_peer(const std::string& peer) {
  auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : find(it->second);
}

link* network_state::open_link(caf::io::connection_handle h, bool outbound) {
  link& l = links_[h.id()];
  l.hdl = h;
  l.serial = next_serial_++;
  l.outbound = outbound;
  l.address = self_->remote_addr(h) + ":" + std::to_string(self_->remote_port(h));
  l.opened = l.last_rx = now();
  l.bucket.set_rate(default_rate_, l.opened);
  self_->configure_read(h, read_prefix());
  result<std::vector<uint8_t>> nonce = handshake_nonce();
  if (!nonce) {
    refuse(l, nonce.err().message);
    return nullptr;
  }
  l.nonce = std::move(nonce).value();
  msg::frame f;
  f.content = msg::hello{cfg_.name, cfg_.role, l.nonce};
  send_frame(l, f);
  return find(h.id());  // send_frame may have dropped the link (a fault rule on hello)
}

// --- commands ------------------------------------------------------------------------------------------------------

caf::result<uint16_t> network_state::listen(const std::string& host, uint16_t port) {
  auto r = self_->add_tcp_doorman(port, host.empty() ? nullptr : host.c_str(), true);
  if (!r) {
    log_->warn("listen failed host={} port={} error={}", host, port, caf::to_string(r.error()));
    return r.error();
  }
  listen_port_ = r->second;
  log_->info("listening node={} host={} port={}", cfg_.name, host, listen_port_);
  return listen_port_;
}

caf::result<std::string> network_state::connect(const std::string& peer, const std::string& host, uint16_t port) {
  if (!peer.empty() && find_peer(peer)) return peer;  // already linked
  auto h = self_->add_tcp_scribe(host, port);
  if (!h) {
    std::string why = "connect " + host + ":" + std::to_string(port) + " failed: " + caf::to_string(h.error());
    log_->warn("{}", why);
    return caf::make_error(caf::sec::cannot_connect_to_node, why);
  }
  ++counters_.connected;
  auto rp = self_->make_response_promise();
  link* l = open_link(*h, true);
  if (!l) {
    rp.deliver(caf::make_error(caf::sec::cannot_connect_to_node, "connect " + host + ": refused at once"));
    return rp;
  }
  l->expected_peer = peer;
  l->waiters.push_back(rp);
  return rp;
}

void network_state::send(const std::string& peer, const frame_ptr& f) {
  link* l = find_peer(peer);
  if (!l || !f) {
    ++counters_.send_unknown_peer;
    log_->debug("send dropped peer={} reason=no link", peer);
    return;
  }
  send_frame(*l, *f);
}

void network_state::broadcast(const frame_ptr& f) {
  if (!f) return;
  std::vector<int64_t> ids;
  for (auto& [name, id] : peers_) ids.push_back(id);
  for (int64_t id : ids)
    if (link* l = find(id)) send_frame(*l, *f);
}

net_stats network_state::stats() {
  net_stats s = counters_;
  s.listen_port = listen_port_;
  s.fault_dropped = faults_.dropped;
  s.fault_delayed = faults_.delayed;
  s.fault_duplicated = faults_.duplicated;
  s.fault_corrupted = faults_.corrupted;
  s.fault_disconnected = faults_.disconnected;
  for (auto& [name, id] : peers_) {
    const link* l = find(id);
    if (!l) continue;
    link_stats ls;
    ls.peer = name;
    ls.address = l->address;
    ls.outbound = l->outbound;
    ls.bytes_in = l->bytes_in;
    ls.bytes_out = l->bytes_out;
    ls.frames_in = l->frames_in;
    ls.frames_out = l->frames_out;
    ls.bandwidth_in = l->bw.bytes_per_sec();
    ls.rtt_nanos = l->rtt_nanos;
    ls.rate_limit = l->bucket.rate();
    ls.queued_bytes = l->queued;
    s.links.push_back(std::move(ls));
  }
  return s;
}

void network_state::set_faults(const fault_config& cfg) {
  faults_.configure(cfg);
  log_->info("faults node={} rules={} seed={}", cfg_.name, cfg.rules.size(), cfg.seed);
}

void network_state::set_rate(const std::string& peer, uint64_t bytes_per_sec) {
  steady_time t = now();
  if (peer.empty()) default_rate_ = bytes_per_sec;
  for (auto& [id, l] : links_) {
    if (!peer.empty() && (!l.authed || l.peer != peer)) continue;
    l.bucket.set_rate(bytes_per_sec, t);
  }
  std::vector<int64_t> ids;
  for (auto& [id, l] : links_) ids.push_back(id);
  for (int64_t id : ids)
    if (link* l = find(id)) pump(*l);  // a lifted limit releases what was queued
}

void network_state::set_paused(bool on) {
  paused_ = on;
  log_->info("paused node={} on={}", cfg_.name, on);
}

void network_state::close_peer(const std::string& peer) {
  if (link* l = find_peer(peer)) drop(*l, "closed locally");
}

// --- broker events -------------------------------------------------------------------------------------------------

void network_state::on_accept(caf::io::connection_handle h) {
  ++counters_.accepted;
  link* l = open_link(h, false);
  if (l) log_->debug("accepted node={} address={}", cfg_.name, l->address);
}

void network_state::on_closed(caf::io::connection_handle h) {
  link* l = find(h.id());
  if (!l) return;
  if (l->authed) {
    drop(*l, "connection closed");
  } else {
    refuse(*l, "connection closed during handshake");
  }
}

void network_state::on_tick() {
  steady_time t = now();
  std::vector<int64_t> ids;
  for (auto& [id, l] : links_) ids.push_back(id);
  for (int64_t id : ids) {
    link* l = find(id);
    if (!l) continue;
    if (!l->authed) {
      if (t - l->opened > cfg_.handshake_timeout) refuse(*l, "handshake timeout");
      continue;
    }
    // Silence must be seen on two consecutive ticks: a first sighting may only mean that this node's own I/O loop
    // was busy (encoding a large frame, say) and has not read the socket yet; by the next tick it has.
    if (t - l->last_rx > cfg_.heartbeat_timeout) {
      if (l->overdue) {
        ++counters_.heartbeat_timeouts;
        drop(*l, "heartbeat timeout");
        continue;
      }
      l->overdue = true;
    } else {
      l->overdue = false;
    }
    if (paused_) continue;
    msg::frame f;
    f.content = msg::heartbeat{++l->hb_seq & ~k_echo_bit,
                               static_cast<uint64_t>(t.time_since_epoch().count())};
    send_frame(*l, f);
  }
  self_->delayed_send(self_, cfg_.heartbeat_interval, net_tick_atom_v);
}

}  // namespace net

namespace {

using network_broker_t = caf::io::stateful_broker<net::network_state>;

caf::behavior network_broker(network_broker_t* self, network_config cfg) {
  self->state.init(self, std::move(cfg));
  return {
      [=](caf::io::new_connection_msg& m) { self->state.on_accept(m.handle); },
      [=](caf::io::new_data_msg& m) { self->state.on_data(m.handle, m.buf); },
      [=](caf::io::connection_closed_msg& m) { self->state.on_closed(m.handle); },
      [=](caf::io::acceptor_closed_msg&) {},
      [=](net_listen_atom, const std::string& host, uint16_t port) -> caf::result<uint16_t> {
        return self->state.listen(host, port);
      },
      [=](net_connect_atom, const std::string& peer, const std::string& host,
          uint16_t port) -> caf::result<std::string> { return self->state.connect(peer, host, port); },
      [=](net_send_atom, const std::string& peer, const frame_ptr& f) { self->state.send(peer, f); },
      [=](net_broadcast_atom, const frame_ptr& f) { self->state.broadcast(f); },
      [=](net_sink_atom, caf::actor sink) { self->state.set_sink(std::move(sink)); },
      [=](net_stats_atom) -> net_stats { return self->state.stats(); },
      [=](net_faults_atom, const fault_config& fc) { self->state.set_faults(fc); },
      [=](net_rate_atom, const std::string& peer, uint64_t bps) { self->state.set_rate(peer, bps); },
      [=](net_pause_atom, bool on) { self->state.set_paused(on); },
      [=](net_close_atom, const std::string& peer) { self->state.close_peer(peer); },
      [=](net_tick_atom) { self->state.on_tick(); },
      [=](net_pump_atom, int64_t hdl_id, uint64_t serial) { self->state.on_pump(hdl_id, serial); },
      [=](net_delay_atom, uint64_t id) { self->state.on_delayed(id); },
  };
}

}  // namespace

network_actor spawn_network(caf::actor_system& sys, network_config cfg) {
  return sys.middleman().spawn_broker(network_broker, std::move(cfg));
}

}  // namespace lime
