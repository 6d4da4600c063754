// GGUF v2/v3 reader: header, metadata (every value type, nested arrays), tensor infos, aligned tensor data.
// Strictly validated: a corrupt or hostile file gives an error, never a crash, an out-of-bounds read or a huge
// allocation. The file is mmap'ed read-only; tensor data pointers stay valid while the gguf_file lives.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/tensor_type.h"
#include "runtime/result.h"

namespace lime {

enum class gguf_type : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
const char* gguf_type_name(gguf_type t);

// One metadata value. Scalars of integer types are kept in `u` (bit pattern, zero/sign extended to 64 bits
// as their type says: i8..i64 sign-extended); floats in `f`; strings in `str`; arrays in `arr` with their
// element type (arrays of arrays nest).
struct gguf_value {
  gguf_type type = gguf_type::u8;
  uint64_t u = 0;
  double f = 0.0;
  std::string str;
  gguf_type elem_type = gguf_type::u8;  // arrays only
  std::vector<gguf_value> arr;          // arrays only

  bool is_integer() const;
  bool is_signed() const;  // i8..i64
};

struct gguf_kv {
  std::string key;
  gguf_value value;
};

struct gguf_tensor_info {
  std::string name;
  tensor_type type = tensor_type::f32;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension, as in GGML
  uint64_t offset = 0;           // from the start of the data section (a multiple of the alignment)
  uint64_t n_bytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class gguf_file {
 public:
  // Opens and validates a file (mmap). Errors: io_error (cannot open/map), bad_format (corrupt/truncated),
  // unsupported (version other than 2 or 3).
  static result<gguf_file> open(const std::string& path);
  // Validates an in-memory image; the bytes are copied and owned by the returned object.
  static result<gguf_file> parse(const uint8_t* data, size_t size);

  gguf_file(gguf_file&&) noexcept;
  gguf_file& operator=(gguf_file&&) noexcept;
  ~gguf_file();

  uint32_t version() const;
  uint64_t alignment() const;    // general.alignment or 32
  uint64_t data_offset() const;  // start of the data section in the file
  const std::string& path() const;  // empty for parse()

  const std::vector<gguf_kv>& metadata() const;
  const gguf_value* find(std::string_view key) const;  // nullptr when absent

  // Typed accessors. T: bool, any integer type of 8..64 bits, float, double, std::string.
  // Integers convert between integer types when the value fits (else invalid_argument naming the key);
  // float/double accept f32/f64 values. Missing key: errc::missing. Wrong kind: errc::bad_format.
  template <class T>
  result<T> get(std::string_view key) const;
  template <class T>
  T get_or(std::string_view key, T fallback) const;  // fallback when missing; also when it does not convert
  // Arrays of scalars/strings (element conversion rules as above).
  template <class T>
  result<std::vector<T>> get_array(std::string_view key) const;

  const std::vector<gguf_tensor_info>& tensors() const;
  const gguf_tensor_info* find_tensor(std::string_view name) const;  // nullptr when absent
  const uint8_t* tensor_data(const gguf_tensor_info& t) const;        // in the mapped file, aligned
  // Byte range of the whole file (mapped).
  const uint8_t* file_data() const;
  uint64_t file_size() const;

 private:
  gguf_file();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace lime
