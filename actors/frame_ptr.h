// frame_ptr: how a wire frame (messages/wire_types.h) travels between local actors as one CAF message type. Local
// sends share the immutable frame; serialization (CAF's inspectors) goes through the Cap'n Proto codec bytes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>

#include "messages/wire_types.h"

namespace lime {

struct frame_ptr {
  std::shared_ptr<const msg::frame> f;  // immutable once wrapped: receivers may share it across actors

  const msg::frame* operator->() const { return f.get(); }
  const msg::frame& operator*() const { return *f; }
  explicit operator bool() const { return static_cast<bool>(f); }
};

inline frame_ptr make_frame_ptr(msg::frame fr) { return frame_ptr{std::make_shared<const msg::frame>(std::move(fr))}; }
template <class Body>
frame_ptr make_frame_ptr(Body body, uint64_t epoch = 0) {
  msg::frame fr;
  fr.epoch = epoch;
  fr.content = std::move(body);
  return make_frame_ptr(std::move(fr));
}

// Codec bytes of a frame (empty for a null frame_ptr) and back; decode errors become a caf::error (never throws).
std::vector<uint8_t> frame_ptr_bytes(const frame_ptr& x);
caf::error frame_ptr_from_bytes(const std::vector<uint8_t>& bytes, frame_ptr& x);
std::string frame_ptr_summary(const frame_ptr& x);  // "micro_batch epoch=3" for logs and to_string

// CAF 0.17 inspection: saving encodes, loading decodes after the byte field is read (load_callback); the
// stringification inspector (result_type void) prints a summary instead of a hex dump of the whole frame.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, frame_ptr& x) {
  if constexpr (std::is_void<typename Inspector::result_type>::value) {
    std::string summary = frame_ptr_summary(x);
    return f(caf::meta::type_name("lime::frame_ptr"), summary);
  } else if constexpr (Inspector::reads_state) {
    std::vector<uint8_t> bytes = frame_ptr_bytes(x);
    return f(caf::meta::type_name("lime::frame_ptr"), bytes);
  } else {
    std::vector<uint8_t> bytes;
    return f(caf::meta::type_name("lime::frame_ptr"), bytes,
             caf::meta::load_callback([&]() -> caf::error { return frame_ptr_from_bytes(bytes, x); }));
  }
}

}  // namespace lime
