// frame_ptr's serialization through the Cap'n Proto codec.
#include "actors/frame_ptr.h"

#include "messages/codec.h"

namespace lime {

std::vector<uint8_t> frame_ptr_bytes(const frame_ptr& x) {
  if (!x.f) return {};
  return msg::encode(*x.f);
}

caf::error frame_ptr_from_bytes(const std::vector<uint8_t>& bytes, frame_ptr& x) {
  if (bytes.empty()) {
    x.f.reset();
    return caf::none;
  }
  result<msg::frame> r = msg::decode(bytes.data(), bytes.size());
  if (!r) return caf::make_error(caf::sec::invalid_argument, r.err().message);
  x.f = std::make_shared<const msg::frame>(std::move(r).value());
  return caf::none;
}

std::string frame_ptr_summary(const frame_ptr& x) {
  if (!x.f) return "null";
  return std::string(msg::frame_kind(*x.f)) + " epoch=" + std::to_string(x.f->epoch);
}

}  // namespace lime
