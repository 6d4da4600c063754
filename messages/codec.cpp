// Cap'n Proto codec for lime frames: builders per body kind, readers with validation of every length and index.
#include "messages/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <string>

#include "messages/codec_body.h"
#include "messages/lime.capnp.h"

namespace lime::msg {

const char* frame_kind(const frame& f) {
  static const char* const names[] = {"hello", "auth", "heartbeat", "micro_batch", "sampled_tokens",
                                      "prefetch_request", "prefetch_ready", "memory_pressure", "assignment",
                                      "profile", "generation_request", "token_stream", "generation_done",
                                      "cancel", "error", "seq_free", "assignment_ack", "status_request",
                                      "cluster_status"};
  static_assert(sizeof(names) / sizeof(names[0]) == std::variant_size_v<body>, "a name per body kind");
  return names[f.content.index()];
}

std::vector<uint8_t> encode(const frame& f) {
  capnp::MallocMessageBuilder mb;
  wire::Frame::Builder b = mb.initRoot<wire::Frame>();
  b.setVersion(f.version);
  b.setEpoch(f.epoch);
  std::visit([&](const auto& v) { encode_body(b, v); }, f.content);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(mb);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

result<frame> decode(const uint8_t* data, size_t size, const decode_limits& limits) {
  if (!data || size == 0) return make_error(errc::bad_format, "frame: empty");
  if (size > limits.max_frame_bytes)
    return make_error(errc::bad_format, "frame: " + std::to_string(size) + " bytes, over the limit of " + std::to_string(limits.max_frame_bytes));
  if (size % sizeof(capnp::word) != 0) return make_error(errc::bad_format, "frame: size is not a multiple of 8 bytes");
  // Cap'n Proto reads 8-byte-aligned words: copy into an aligned buffer (frames from a socket are not aligned).
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
  std::memcpy(words.begin(), data, size);
  try {
    capnp::ReaderOptions opt;
    opt.traversalLimitInWords = size / sizeof(capnp::word) * 2 + 1024;  // a frame is read once; no amplification
    opt.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(words.asPtr(), opt);
    wire::Frame::Reader r = reader.getRoot<wire::Frame>();
    frame f;
    f.version = r.getVersion();
    if (f.version != k_protocol_version)
      return make_error(errc::unsupported, "frame: protocol version " + std::to_string(f.version) + ", this node speaks " +
                                               std::to_string(k_protocol_version));
    f.epoch = r.getEpoch();
    LIME_TRY(f.content, decode_body(r));
    return f;
  } catch (const kj::Exception& e) {
    return make_error(errc::bad_format, std::string("frame: malformed: ") + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return make_error(errc::bad_format, std::string("frame: malformed: ") + e.what());
  }
}

}  // namespace lime::msg
