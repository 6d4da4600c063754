// A model's identity for a cluster: every node must serve the same file. The content id hashes what defines the
// model (the GGUF header: metadata and tensor table, byte for byte) and the file size; the full hash covers every byte.
#pragma once
#include <cstdint>
#include <string>

#include "runtime/gguf.h"
#include "runtime/result.h"

namespace lime {

// XXH64 over the header bytes [0, data offset) followed by the 8-byte little-endian file size. Never 0.
uint64_t model_content_id(const gguf_file& f);

// XXH64 over the whole file (read sequentially in large chunks, so it works on files larger than RAM).
// Errors: io_error.
result<uint64_t> model_full_hash(const std::string& path);

}  // namespace lime
