// logits_checksum_step / checksum_hex on libxxhash's XXH64.
#include "runtime/checksum.h"

#include <xxhash.h>

namespace lime {

uint64_t logits_checksum_step(uint64_t prev, const float* logits, int32_t n_vocab) {
  const size_t bytes = n_vocab > 0 ? static_cast<size_t>(n_vocab) * sizeof(float) : 0;
  static const char k_empty = 0;  // XXH64 wants a valid pointer even for zero bytes
  return static_cast<uint64_t>(XXH64(bytes ? static_cast<const void*>(logits) : &k_empty, bytes, prev));
}

std::string checksum_hex(uint64_t h) {
  static const char k_digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<size_t>(i)] = k_digits[h & 0xf];
    h >>= 4;
  }
  return s;
}

}  // namespace lime
