// Encodes frames (messages/wire_types.h) to Cap'n Proto bytes and decodes bytes from a peer back. Decoding never
// throws and never trusts the peer: malformed bytes, a wrong protocol version or inconsistent lengths give an
// error value (errc::bad_format / errc::unsupported); the caller drops the connection and lives on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "messages/wire_types.h"
#include "runtime/result.h"

namespace lime::msg {

struct decode_limits {
  uint64_t max_frame_bytes = 1ull << 30;  // frames larger than this are refused before parsing
};

std::vector<uint8_t> encode(const frame& f);
result<frame> decode(const uint8_t* data, size_t size, const decode_limits& limits = {});

}  // namespace lime::msg
