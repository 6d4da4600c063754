// The network actor's experiment knobs: fault injection on outgoing frames (seeded, counted) and a per-link token
// bucket for rate limits; plain classes without actor code, owned by the network actor's state.
#pragma once
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "actors/network_types.h"

namespace lime::net {

using steady_time = std::chrono::steady_clock::time_point;

struct fault_decision {
  bool drop = false, duplicate = false, corrupt = false, disconnect = false;
  uint32_t delay_ms = 0;  // 0 = send now
};

class fault_injector {
 public:
  void configure(const fault_config& cfg);  // replaces rules and reseeds; counters are kept
  bool active() const { return !rules_.empty(); }
  // Rolls every rule matching `kind` (msg::frame_kind name) and counts what hit.
  fault_decision decide(const char* kind);
  // Damages an encoded frame so that the receiving decoder rejects it: the segment count of the Cap'n Proto
  // segment table becomes huge. A frame shorter than one word is left alone.
  static void corrupt(std::vector<uint8_t>& encoded);

  uint64_t dropped = 0, delayed = 0, duplicated = 0, corrupted = 0, disconnected = 0;

 private:
  std::vector<fault_rule> rules_;
  std::mt19937_64 rng_{1};
};

// Token bucket over outgoing bytes. Tokens accrue at `rate` bytes/s up to `burst`; a send takes what it writes.
class token_bucket {
 public:
  void set_rate(uint64_t bytes_per_sec, steady_time now);  // 0 = unlimited
  uint64_t rate() const { return rate_; }
  bool limited() const { return rate_ > 0; }
  // Bytes that may be written now (after refilling up to `now`); only meaningful when limited().
  uint64_t available(steady_time now);
  void take(uint64_t n) { tokens_ -= static_cast<double>(n); }
  // Time until `n` bytes (capped at the burst) are available.
  std::chrono::nanoseconds wait_for(uint64_t n) const;
  uint64_t burst() const { return static_cast<uint64_t>(burst_); }

 private:
  uint64_t rate_ = 0;
  double burst_ = 0, tokens_ = 0;
  steady_time last_{};
};

// Receive bandwidth over recent frames: each sample is one frame's bytes and the time from its length prefix to
// its last byte. Frames under 4 KiB are not sampled (their timing says nothing about the link).
class bandwidth_window {
 public:
  static constexpr uint64_t k_min_sample_bytes = 4096;
  void add(uint64_t bytes, std::chrono::nanoseconds took);
  double bytes_per_sec() const;  // 0 without samples

 private:
  static constexpr size_t k_samples = 32;
  uint64_t bytes_[k_samples] = {};
  int64_t nanos_[k_samples] = {};
  size_t n_ = 0, next_ = 0;
};

}  // namespace lime::net
