// Fault injection, token bucket and bandwidth window of the network actor.
#include "actors/net_faults.h"

#include <algorithm>
#include <cstring>

namespace lime {

const char* fault_action_name(fault_action a) {
  switch (a) {
    case fault_action::drop: return "drop";
    case fault_action::delay: return "delay";
    case fault_action::duplicate: return "duplicate";
    case fault_action::corrupt: return "corrupt";
    case fault_action::disconnect: return "disconnect";
  }
  return "?";
}

namespace net {

void fault_injector::configure(const fault_config& cfg) {
  rules_ = cfg.rules;
  rng_.seed(cfg.seed);
}

fault_decision fault_injector::decide(const char* kind) {
  fault_decision d;
  if (rules_.empty()) return d;
  const bool handshake = std::strcmp(kind, "hello") == 0 || std::strcmp(kind, "auth") == 0;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (const fault_rule& r : rules_) {
    const bool any = r.kind.empty() || r.kind == "*";
    if (any ? handshake : r.kind != kind) continue;
    if (unit(rng_) >= r.probability) continue;
    switch (r.action) {
      case fault_action::drop: d.drop = true; break;
      case fault_action::delay: d.delay_ms = std::max(d.delay_ms, r.delay_ms); break;
      case fault_action::duplicate: d.duplicate = true; break;
      case fault_action::corrupt: d.corrupt = true; break;
      case fault_action::disconnect: d.disconnect = true; break;
    }
  }
  // What actually happens: a disconnect or drop wins over everything else.
  if (d.disconnect) {
    ++disconnected;
    return fault_decision{false, false, false, true, 0};
  }
  if (d.drop) {
    ++dropped;
    return fault_decision{true, false, false, false, 0};
  }
  if (d.corrupt) ++corrupted;
  if (d.duplicate) ++duplicated;
  if (d.delay_ms > 0) ++delayed;
  return d;
}

void fault_injector::corrupt(std::vector<uint8_t>& encoded) {
  // Word 0 of a Cap'n Proto message is (segment count - 1, size of segment 0) as little-endian uint32s. Setting the
  // high byte of the count claims >= 2^24 segments: more than any frame, so the reader must refuse.
  if (encoded.size() < 8) return;
  encoded[3] ^= 0x7f;
}

void token_bucket::set_rate(uint64_t bytes_per_sec, steady_time now) {
  rate_ = bytes_per_sec;
  // Burst: 20 ms of traffic, at least 16 KiB, so a limit shapes at a granularity finer than a heartbeat interval.
  burst_ = std::max(16384.0, static_cast<double>(bytes_per_sec) * 0.02);
  tokens_ = burst_;
  last_ = now;
}

uint64_t token_bucket::available(steady_time now) {
  if (now > last_) {
    double dt = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + dt * static_cast<double>(rate_));
    last_ = now;
  }
  return tokens_ > 0 ? static_cast<uint64_t>(tokens_) : 0;
}

std::chrono::nanoseconds token_bucket::wait_for(uint64_t n) const {
  if (rate_ == 0) return std::chrono::nanoseconds(0);
  double need = std::min(static_cast<double>(n), burst_) - tokens_;
  if (need <= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(need / static_cast<double>(rate_) * 1e9) + 1);
}

void bandwidth_window::add(uint64_t bytes, std::chrono::nanoseconds took) {
  if (bytes < k_min_sample_bytes) return;
  bytes_[next_] = bytes;
  nanos_[next_] = std::max<int64_t>(took.count(), 1000);  // clock granularity: never less than 1 us
  next_ = (next_ + 1) % k_samples;
  n_ = std::min(n_ + 1, k_samples);
}

double bandwidth_window::bytes_per_sec() const {
  uint64_t bytes = 0;
  int64_t nanos = 0;
  for (size_t i = 0; i < n_; ++i) {
    bytes += bytes_[i];
    nanos += nanos_[i];
  }
  return nanos > 0 ? static_cast<double>(bytes) * 1e9 / static_cast<double>(nanos) : 0.0;
}

}  // namespace net
}  // namespace lime
