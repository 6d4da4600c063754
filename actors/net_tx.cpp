// The network actor's send path: encoding, fault injection, the per-link token bucket, and delayed frames.
#include <caf/io/broker.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "actors/net_state.h"
#include "messages/codec.h"

namespace lime::net {

void network_state::send_frame(link& l, const msg::frame& f) {
  const char* kind = msg::frame_kind(f);
  fault_decision d = faults_.decide(kind);
  if (d.disconnect) {
    log_->info("fault disconnect node={} peer={} kind={}", cfg_.name, l.peer, kind);
    return fail(l, "fault: disconnect");
  }
  if (d.drop) return;
  std::vector<uint8_t> bytes = msg::encode(f);
  if (bytes.size() > cfg_.max_frame_bytes || bytes.size() > UINT32_MAX) {
    log_->error("frame too large to send node={} peer={} kind={} bytes={}", cfg_.name, l.peer, kind, bytes.size());
    return;
  }
  if (d.corrupt) fault_injector::corrupt(bytes);
  auto body = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  if (d.delay_ms > 0) {
    const uint64_t id = next_delay_id_++;
    delayed_[id] = delayed_frame{l.hdl.id(), l.serial, body, d.duplicate};
    self_->delayed_send(self_, std::chrono::milliseconds(d.delay_ms), net_delay_atom_v, id);
    return;
  }
  enqueue(l, body);
  if (d.duplicate) enqueue(l, body);
}

void network_state::on_delayed(uint64_t id) {
  auto it = delayed_.find(id);
  if (it == delayed_.end()) return;
  delayed_frame df = std::move(it->second);
  delayed_.erase(it);
  link* l = find(df.hdl_id);
  if (!l || l->serial != df.serial) return;  // the link ended meanwhile
  enqueue(*l, df.body);
  if (df.duplicate) enqueue(*l, df.body);
}

void network_state::enqueue(link& l, std::shared_ptr<const std::vector<uint8_t>> body) {
  ++l.frames_out;
  out_frame of{std::move(body), 0};
  if (!l.bucket.limited() && l.queue.empty()) {
    write_part(l, of, of.total());
    self_->flush(l.hdl);
    return;
  }
  l.queued += of.total();
  l.queue.push_back(std::move(of));
  pump(l);
}

void network_state::write_part(link& l, out_frame& of, uint64_t n) {
  uint64_t end = of.done + n;
  if (of.done < 4) {  // the length prefix, little-endian
    const uint32_t len = static_cast<uint32_t>(of.body->size());
    const unsigned char prefix[4] = {static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                                     static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 24)};
    const uint64_t upto = std::min<uint64_t>(end, 4);
    self_->write(l.hdl, upto - of.done, prefix + of.done);
    of.done = upto;
  }
  if (end > of.done) {
    self_->write(l.hdl, end - of.done, of.body->data() + (of.done - 4));
    of.done = end;
  }
  l.bytes_out += n;
}

void network_state::pump(link& l) {
  if (l.queue.empty()) return;
  const int64_t id = l.hdl.id();
  if (!l.bucket.limited()) {
    for (out_frame& of : l.queue) write_part(l, of, of.total() - of.done);
    l.queue.clear();
    l.queued = 0;
    self_->flush(l.hdl);
    return;
  }
  uint64_t avail = l.bucket.available(now());
  bool wrote = false;
  while (!l.queue.empty() && avail > 0) {
    out_frame& of = l.queue.front();
    const uint64_t n = std::min(avail, of.total() - of.done);
    write_part(l, of, n);
    l.bucket.take(n);
    l.queued -= n;
    avail -= n;
    wrote = true;
    if (of.done == of.total()) l.queue.pop_front();
  }
  if (wrote) self_->flush(l.hdl);
  if (!l.queue.empty() && !l.pump_pending) {
    const out_frame& head = l.queue.front();
    auto wait = std::max<std::chrono::nanoseconds>(l.bucket.wait_for(head.total() - head.done),
                                                   std::chrono::milliseconds(1));
    l.pump_pending = true;
    self_->delayed_send(self_, wait, net_pump_atom_v, id, l.serial);
  }
}

void network_state::on_pump(int64_t hdl_id, uint64_t serial) {
  link* l = find(hdl_id);
  if (!l || l->serial != serial) return;
  l->pump_pending = false;
  pump(*l);
}

}  // namespace lime::net
