// The network actor: lime's only owner of sockets. One per node, a dynamically typed CAF I/O broker that frames
// lime messages on TCP (4-byte little-endian length + Cap'n Proto frame bytes, messages/codec.h), authenticates
// peers with the cluster secret, runs heartbeats, measures links, and injects faults for tests.
#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/frame_ptr.h"
#include "actors/network_types.h"
#include "actors/type_ids.h"

namespace lime {

// Interface (atoms from actors/type_ids.h). Requests are answered as noted; the rest are fire-and-forget (a request
// to them gets an empty reply once applied, so a test can wait for it).
//
//   (net_listen_atom, std::string host, uint16_t port) -> uint16_t
//       Accepts peers on host:port ("" = any interface; port 0 = a free port); replies the bound port.
//   (net_connect_atom, std::string peer, std::string host, uint16_t port) -> std::string
//       Opens a connection and replies the peer's name once both sides authenticated; an error when the TCP connect
//       fails or the handshake is refused (including a peer that claims a name other than `peer`; "" = any name).
//       Replies at once when `peer` is already linked. Callers set their own request timeout.
//   (net_send_atom, std::string peer, frame_ptr f)
//       Sends f on the authenticated link to peer (in order per link; faults and the rate limit apply). With no such
//       link the frame is dropped and counted (send_unknown_peer).
//   (net_broadcast_atom, frame_ptr f)             sends f to every authenticated peer.
//   (net_sink_atom, caf::actor sink)              who receives the events below (one sink; replaces the previous).
//   (net_stats_atom) -> net_stats                 per-link and node-wide counters.
//   (net_faults_atom, fault_config cfg)           replaces the fault rules (empty = off) and reseeds.
//   (net_rate_atom, std::string peer, uint64_t bytes_per_sec)
//       Token-bucket limit on outgoing bytes of one link; peer "" = every current and future link; 0 = unlimited.
//   (net_pause_atom, bool on)                     test hook: while on, this node sends no heartbeats or echoes
//                                                 (it looks hung to its peers, which declare it lost).
//   (net_close_atom, std::string peer)            closes the link (peer_down with reason "closed locally").
//
// Events to the sink:
//   (std::string peer, frame_ptr f)   every authenticated frame except hello/auth/heartbeat, in arrival order.
//   peer_up_msg                       a peer authenticated (once per peer while a link to it exists).
//   peer_down_msg                     an authenticated peer's link ended (closed, heartbeat timeout, bad frame...).
//   peer_refused_msg                  a connection was refused before authentication (bad MAC, wrong protocol
//                                     version, garbage, frame before authentication, handshake timeout, ...).
//
// Handshake: on a new connection both sides send Hello{name, role, 32-byte nonce}; on the peer's Hello each sends
// Auth{HMAC-SHA256(secret, peer's nonce || own name)}; a side accepts the link when the peer's Auth verifies.
// Heartbeats: every interval each side sends Heartbeat{seq, sent_nanos}; the receiver echoes it back with bit 63
// of seq set, which gives the sender the round trip. A link that received no byte for `timeout`, seen so on two
// consecutive heartbeat ticks, is dropped (lost within timeout + 2 intervals; the second look keeps a node whose own
// I/O loop was busy from blaming its peers).
// Between two nodes that connect to each other at once, the link opened by the smaller name is kept (rarely, one
// side may then report a peer_down/peer_up pair for the switch).
// Reading: the length prefix with receive_policy::exactly(4), the body with at_most(read_chunk_bytes) pieces, so a
// large frame on a slow link keeps the link alive while it arrives.
//
// Not handled (yet): connect() blocks the I/O loop for the TCP connect; encoding/decoding runs on the I/O loop (one
// per process, shared by all brokers); there is no backpressure (a sender faster than the link grows the socket
// write buffer).
using network_actor = caf::actor;  // dynamically typed: the messages above
network_actor spawn_network(caf::actor_system& sys, network_config cfg);

}  // namespace lime
