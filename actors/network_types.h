// Plain types of the network actor's interface: its configuration, the events it sends to its sink, its stats and
// its fault-injection rules (with CAF inspect() so they can be CAF messages; ids in actors/type_ids.h).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/wire_types.h"

namespace lime {

struct network_config {
  std::string name;                                  // this node's name, sent in Hello; unique in the cluster
  msg::peer_role role = msg::peer_role::node;
  std::vector<uint8_t> secret;                       // cluster secret (HMAC key); empty is allowed
  std::chrono::milliseconds heartbeat_interval{200};
  std::chrono::milliseconds heartbeat_timeout{1000};  // silence (no byte at all) longer than this = peer lost
  std::chrono::milliseconds handshake_timeout{5000};  // a connection not authenticated by then is refused
  uint64_t max_frame_bytes = 1ull << 30;             // a longer length prefix drops the connection
  uint64_t max_handshake_frame_bytes = 64 * 1024;    // limit before authentication (hello/auth are tiny)
  uint64_t read_chunk_bytes = 16ull << 20;           // most bytes taken from a socket per read event
};

// --- events sent to the sink -------------------------------------------------------------------------------------
// Besides these, every authenticated frame except hello/auth/heartbeat reaches the sink as (std::string peer,
// frame_ptr frame).

struct peer_up_msg {
  std::string peer;     // the name the peer authenticated as
  msg::peer_role role = msg::peer_role::node;
  std::string address;  // "host:port" of the remote end
};
struct peer_down_msg {
  std::string peer;
  std::string reason;   // "connection closed", "heartbeat timeout", "bad frame: ...", "fault: disconnect", ...
};
struct peer_refused_msg {
  std::string peer;     // the claimed name when a Hello arrived, else empty
  std::string address;
  std::string reason;   // "bad mac", "protocol version ...", "frame before authentication", ...
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_up_msg& x) {
  return f(caf::meta::type_name("lime::peer_up_msg"), x.peer, x.role, x.address);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_down_msg& x) {
  return f(caf::meta::type_name("lime::peer_down_msg"), x.peer, x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_refused_msg& x) {
  return f(caf::meta::type_name("lime::peer_refused_msg"), x.peer, x.address, x.reason);
}

// --- fault injection (sender side, applied to outgoing frames) -----------------------------------------------------

enum class fault_action : uint8_t {
  drop = 0,        // the frame is not sent
  delay = 1,       // the frame is sent delay_ms later (later frames may overtake it)
  duplicate = 2,   // the frame is sent twice
  corrupt = 3,     // the encoded frame's segment table is damaged, so the receiver's decoder must reject it
  disconnect = 4,  // the frame is not sent and the connection is closed
};
const char* fault_action_name(fault_action a);

struct fault_rule {
  std::string kind;  // msg::frame_kind() name ("micro_batch", "heartbeat", ...); "" or "*" = any kind except
                     // hello/auth (a handshake frame is only hit by a rule naming it)
  fault_action action = fault_action::drop;
  double probability = 1.0;  // [0, 1], rolled per matching frame with the seeded generator
  uint32_t delay_ms = 0;     // delay only
};
struct fault_config {
  std::vector<fault_rule> rules;  // all matching rules roll independently; empty = no faults
  uint64_t seed = 1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fault_rule& x) {
  return f(caf::meta::type_name("lime::fault_rule"), x.kind, x.action, x.probability, x.delay_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fault_config& x) {
  return f(caf::meta::type_name("lime::fault_config"), x.rules, x.seed);
}

// --- stats --------------------------------------------------------------------------------------------------------

struct link_stats {
  std::string peer;
  std::string address;          // "host:port" of the remote end
  bool outbound = false;        // this node connected (vs accepted)
  uint64_t bytes_in = 0, bytes_out = 0;    // socket bytes, length prefixes and handshake included
  uint64_t frames_in = 0, frames_out = 0;  // heartbeats included
  double bandwidth_in = 0;      // bytes/s while receiving recent frames >= 4 KiB (0 until one arrived)
  int64_t rtt_nanos = -1;       // round trip of the last echoed heartbeat; -1 before the first
  uint64_t rate_limit = 0;      // bytes/s for outgoing data, 0 = unlimited
  uint64_t queued_bytes = 0;    // outgoing bytes held back by the rate limit
};
struct net_stats {
  std::string node;
  uint16_t listen_port = 0;
  std::vector<link_stats> links;  // authenticated links, by peer name
  uint64_t accepted = 0, connected = 0;      // connections opened by peers / by this node
  uint64_t refused = 0;                      // handshakes refused (peer_refused events)
  uint64_t bad_frames = 0;                   // frames that failed to decode (connection dropped)
  uint64_t oversize_frames = 0;              // length prefixes over the limit, or 0 (connection dropped)
  uint64_t heartbeat_timeouts = 0;
  uint64_t send_unknown_peer = 0;            // send() to a peer with no authenticated link (frame dropped)
  uint64_t fault_dropped = 0, fault_delayed = 0, fault_duplicated = 0, fault_corrupted = 0,
           fault_disconnected = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_stats& x) {
  return f(caf::meta::type_name("lime::link_stats"), x.peer, x.address, x.outbound, x.bytes_in, x.bytes_out,
           x.frames_in, x.frames_out, x.bandwidth_in, x.rtt_nanos, x.rate_limit, x.queued_bytes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, net_stats& x) {
  return f(caf::meta::type_name("lime::net_stats"), x.node, x.listen_port, x.links, x.accepted, x.connected,
           x.refused, x.bad_frames, x.oversize_frames, x.heartbeat_timeouts, x.send_unknown_peer, x.fault_dropped,
           x.fault_delayed, x.fault_duplicated, x.fault_corrupted, x.fault_disconnected);
}

}  // namespace lime
