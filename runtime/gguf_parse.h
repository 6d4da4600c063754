// Internal to the GGUF reader: the one validating parser over a byte span, shared by gguf_file::open (mmap) and
// gguf_file::parse (owned copy). Never include this outside runtime/gguf*.cpp.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/result.h"

namespace lime::gguf_detail {

// Arrays may nest this many levels (an array of arrays of u8 is 2 levels).
constexpr int k_max_array_depth = 8;
// Metadata values held in memory at most (array elements count one each). Each costs ~88 bytes as a gguf_value,
// so this bounds a hostile file's metadata at ~1.5 GB even when it is that big; real files hold < 1M values
// (a 256k-token vocabulary with scores, types and merges).
constexpr uint64_t k_max_metadata_values = uint64_t{1} << 24;

struct parsed_image {
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // bytes from the start of the image to the data section
  std::vector<gguf_kv> kvs;
  std::vector<gguf_tensor_info> tensors;
  // Views of kvs[i].key / tensors[i].name. They stay valid when this struct is moved: a moved std::vector keeps
  // its elements where they are.
  std::unordered_map<std::string_view, size_t> kv_index;
  std::unordered_map<std::string_view, size_t> tensor_index;
};

// Validates the whole image (header, metadata, tensor infos, tensor ranges). Error messages carry no "gguf:"
// prefix: the caller adds it (with the path, for files).
result<parsed_image> parse_image(const uint8_t* data, uint64_t size);

}  // namespace lime::gguf_detail
