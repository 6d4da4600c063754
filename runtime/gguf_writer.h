// GGUF v3 writer: metadata of every type and tensors, with alignment padding. Used by tests (valid and
// corrupt files) and by the model generator (large sequential writes).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"
#include "runtime/gguf.h"
#include "runtime/result.h"

namespace lime {

class gguf_writer {
 public:
  gguf_writer();
  void set_version(uint32_t v);    // default 3 (2 is allowed; 1 only to build bad files in tests)
  void set_alignment(uint32_t a);  // also written as general.alignment when not 32

  // Metadata in insertion order; setting a key again replaces its value.
  void set(const std::string& key, gguf_value value);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_str(const std::string& key, const std::string& v);
  void set_arr_str(const std::string& key, const std::vector<std::string>& v);
  void set_arr_f32(const std::string& key, const std::vector<float>& v);
  void set_arr_i32(const std::string& key, const std::vector<int32_t>& v);
  // Copies every key/value of another file (e.g. a vocabulary) except those for which skip(key) is true.
  void copy_metadata(const gguf_file& from, const std::function<bool(const std::string&)>& skip = {});

  // Tensors, written in insertion order. dims: ne[0] first (innermost). `data` is not copied: it must stay
  // valid until write(); nullptr means "call fill() at write time" (for streaming a big generated model).
  using fill_fn = std::function<result<void>(uint8_t* dst, uint64_t n_bytes)>;
  result<void> add_tensor(const std::string& name, tensor_type type, const std::vector<int64_t>& dims,
                          const void* data, fill_fn fill = {});

  result<void> write_file(const std::string& path) const;
  result<std::vector<uint8_t>> write_memory() const;

 private:
  struct tensor_entry {
    std::string name;
    tensor_type type;
    std::vector<int64_t> dims;
    uint64_t n_bytes;
    const void* data;
    fill_fn fill;
  };
  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  std::vector<gguf_kv> kvs_;
  std::vector<tensor_entry> tensors_;
};

}  // namespace lime
