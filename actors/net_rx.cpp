// The network actor's receive path: two-phase framing (length prefix, then body), decoding, the handshake, and
// heartbeat echoes. A peer's bytes can never crash the node: anything malformed ends that one connection.
#include <caf/io/broker.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "actors/net_handshake.h"
#include "actors/net_state.h"
#include "messages/codec.h"

namespace lime::net {

namespace {

constexpr size_t k_max_name_bytes = 256;

uint32_t load_le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 | static_cast<uint32_t>(u[2]) << 16 |
         static_cast<uint32_t>(u[3]) << 24;
}

}  // namespace

void network_state::on_data(caf::io::connection_handle h, const std::vector<char>& buf) {
  link* lp = find(h.id());
  if (!lp) return;
  link& l = *lp;
  steady_time t = now();
  l.last_rx = t;
  l.bytes_in += buf.size();
  const uint64_t chunk = std::max<uint64_t>(cfg_.read_chunk_bytes, 4096);

  if (!l.rx_body) {  // --- length prefix
    if (buf.size() != 4) return fail(l, "short read of a length prefix");
    const uint32_t len = load_le32(buf.data());
    const uint64_t limit = l.authed ? cfg_.max_frame_bytes : cfg_.max_handshake_frame_bytes;
    if (len == 0 || len > limit) {
      ++counters_.oversize_frames;
      return fail(l, len == 0 ? std::string("empty frame")
                              : "frame length " + std::to_string(len) + " over the limit of " + std::to_string(limit));
    }
    l.rx_body = true;
    l.rx_len = len;
    l.rx_start = t;
    self_->configure_read(h, caf::io::receive_policy::at_most(std::min<uint64_t>(len, chunk)));
    return;
  }

  // --- body, taken in pieces as they arrive (at_most): on a slow link a large frame still shows progress, so it
  // cannot trip the heartbeat timeout (heartbeats queue behind it on the wire).
  const uint8_t* data = reinterpret_cast<const uint8_t*>(buf.data());
  size_t size = buf.size();
  if (!(l.rx_buf.empty() && size == l.rx_len)) {  // else the whole body came in one read: decode it in place
    if (l.rx_buf.empty()) l.rx_buf.reserve(std::min<uint64_t>(l.rx_len, chunk));
    l.rx_buf.insert(l.rx_buf.end(), data, data + size);
    if (l.rx_buf.size() < l.rx_len) {
      self_->configure_read(h, caf::io::receive_policy::at_most(std::min<uint64_t>(chunk, l.rx_len - l.rx_buf.size())));
      return;
    }
    data = l.rx_buf.data();
    size = l.rx_buf.size();
  }
  l.rx_body = false;
  self_->configure_read(h, caf::io::receive_policy::exactly(4));
  ++l.frames_in;
  l.bw.add(size + 4, t - l.rx_start);
  msg::decode_limits limits;
  limits.max_frame_bytes = cfg_.max_frame_bytes;
  result<msg::frame> r = msg::decode(data, size, limits);
  if (l.rx_buf.capacity() > chunk)
    std::vector<uint8_t>().swap(l.rx_buf);  // a large frame's buffer is not kept between frames
  else
    l.rx_buf.clear();
  if (!r) {
    if (r.err().code == errc::unsupported) return fail(l, "protocol version: " + r.err().message);
    ++counters_.bad_frames;
    return fail(l, "bad frame: " + r.err().message);
  }
  on_frame(l, std::move(r).value());
}

void network_state::on_frame(link& l, msg::frame&& f) {
  if (auto* hb = std::get_if<msg::heartbeat>(&f.content)) {
    if (!l.authed) return refuse(l, "heartbeat before authentication");
    return on_heartbeat(l, *hb);
  }
  if (auto* h = std::get_if<msg::hello>(&f.content)) return on_hello(l, std::move(*h));
  if (auto* a = std::get_if<msg::auth>(&f.content)) return on_auth(l, *a);
  if (!l.authed) return refuse(l, std::string("frame before authentication: ") + msg::frame_kind(f));
  if (sink_) {
    self_->send(sink_, l.peer, frame_ptr{std::make_shared<const msg::frame>(std::move(f))});
  } else {
    log_->debug("frame without sink node={} peer={} kind={}", cfg_.name, l.peer, msg::frame_kind(f));
  }
}

void network_state::on_hello(link& l, msg::hello&& h) {
  if (l.authed) return drop(l, "protocol violation: hello after authentication");
  if (l.hello_in) return refuse(l, "second hello");
  l.peer = h.node_name;  // reported in refusals from here on
  if (h.node_name.empty() || h.node_name.size() > k_max_name_bytes) return refuse(l, "bad peer name");
  if (h.nonce.size() != k_nonce_bytes) return refuse(l, "bad nonce length " + std::to_string(h.nonce.size()));
  if (h.node_name == cfg_.name) return refuse(l, "peer claims this node's name");
  if (!l.expected_peer.empty() && h.node_name != l.expected_peer)
    return refuse(l, "expected peer " + l.expected_peer);
  l.hello_in = true;
  l.role = h.role;
  l.peer_nonce = std::move(h.nonce);
  msg::frame f;
  f.content = msg::auth{handshake_mac(cfg_.secret, l.peer_nonce, cfg_.name)};
  send_frame(l, f);
}

void network_state::on_auth(link& l, const msg::auth& a) {
  if (l.authed) return drop(l, "protocol violation: auth after authentication");
  if (!l.hello_in) return refuse(l, "auth before hello");
  if (!handshake_mac_equal(handshake_mac(cfg_.secret, l.nonce, l.peer), a.mac)) return refuse(l, "bad mac");
  l.authed = true;
  authenticated(l);
}

void network_state::authenticated(link& l) {
  const std::string name = l.peer;
  auto resolve_waiters = [&](link& x) {
    for (caf::response_promise& rp : x.waiters) rp.deliver(name);
    x.waiters.clear();
  };
  auto it = peers_.find(name);
  if (it != peers_.end() && it->second != l.hdl.id()) {
    link* old = find(it->second);
    if (old) {
      // Two links to one peer. Simultaneous connects (each side opened one): both sides keep the link opened by the
      // smaller name. Same opener: the peer reconnected, the newer link replaces the older.
      const std::string& opener_new = l.outbound ? cfg_.name : name;
      const std::string& opener_old = old->outbound ? cfg_.name : name;
      if (opener_new != opener_old) {
        const std::string& keep = std::min(cfg_.name, name);
        if (opener_old == keep) {
          resolve_waiters(l);
          close_quietly(l);
          return;
        }
        for (caf::response_promise& rp : old->waiters) l.waiters.push_back(rp);
        old->waiters.clear();
        close_quietly(*old);
        peers_[name] = l.hdl.id();
        resolve_waiters(l);
        log_->info("link switched node={} peer={} address={}", cfg_.name, name, l.address);
        return;
      }
      drop(*old, "replaced by a new connection");
    }
  }
  peers_[name] = l.hdl.id();
  log_->info("peer up node={} peer={} address={}", cfg_.name, name, l.address);
  resolve_waiters(l);
  if (sink_) self_->send(sink_, peer_up_msg{name, l.role, l.address});
}

void network_state::on_heartbeat(link& l, const msg::heartbeat& hb) {
  if (hb.sequence & k_echo_bit) {
    const int64_t sent = static_cast<int64_t>(hb.sent_nanos);
    const int64_t rtt = now().time_since_epoch().count() - sent;
    if (rtt >= 0) l.rtt_nanos = rtt;
    return;
  }
  if (paused_) return;
  msg::frame f;
  f.content = msg::heartbeat{hb.sequence | k_echo_bit, hb.sent_nanos};
  send_frame(l, f);
}

void network_state::fail(link& l, const std::string& reason) {
  if (l.authed)
    drop(l, reason);
  else
    refuse(l, reason);
}

void network_state::refuse(link& l, const std::string& reason) {
  ++counters_.refused;
  log_->warn("refused node={} peer={} address={} reason={}", cfg_.name, l.peer.empty() ? "?" : l.peer, l.address,
             reason);
  for (caf::response_promise& rp : l.waiters)
    rp.deliver(caf::make_error(caf::sec::cannot_connect_to_node, "refused: " + reason));
  l.waiters.clear();
  peer_refused_msg ev{l.peer, l.address, reason};
  close_quietly(l);
  if (sink_) self_->send(sink_, std::move(ev));
}

void network_state::drop(link& l, const std::string& reason) {
  const std::string name = l.peer;
  const bool current = l.authed && peers_.count(name) && peers_[name] == l.hdl.id();
  log_->warn("peer down node={} peer={} address={} reason={}", cfg_.name, name, l.address, reason);
  for (caf::response_promise& rp : l.waiters)
    rp.deliver(caf::make_error(caf::sec::cannot_connect_to_node, "link dropped: " + reason));
  l.waiters.clear();
  close_quietly(l);
  if (current) {
    peers_.erase(name);
    if (sink_) self_->send(sink_, peer_down_msg{name, reason});
  }
}

void network_state::close_quietly(link& l) {
  const int64_t id = l.hdl.id();
  self_->close(l.hdl);  // no connection_closed_msg follows a close() of our own
  links_.erase(id);
}

}  // namespace lime::net
