// gguf_file: opens (mmap) or copies a GGUF image, hands it to the parser, and serves typed metadata and tensor
// data. Never writes files (gguf_writer.cpp does).
#include "runtime/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#include "runtime/gguf_parse.h"

namespace lime {

const char* gguf_type_name(gguf_type t) {
  switch (t) {
    case gguf_type::u8: return "u8";
    case gguf_type::i8: return "i8";
    case gguf_type::u16: return "u16";
    case gguf_type::i16: return "i16";
    case gguf_type::u32: return "u32";
    case gguf_type::i32: return "i32";
    case gguf_type::f32: return "f32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::u64: return "u64";
    case gguf_type::i64: return "i64";
    case gguf_type::f64: return "f64";
  }
  return "unknown";
}

namespace {
bool integer_type(gguf_type t) {
  switch (t) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::u16: case gguf_type::i16:
    case gguf_type::u32: case gguf_type::i32: case gguf_type::u64: case gguf_type::i64: return true;
    default: return false;
  }
}
}  // namespace

bool gguf_value::is_integer() const { return integer_type(type); }

bool gguf_value::is_signed() const {
  return type == gguf_type::i8 || type == gguf_type::i16 || type == gguf_type::i32 || type == gguf_type::i64;
}

// ---------------------------------------------------------------------------------------------------------------
// Storage: a read-only mapping (open) or an owned, 64-byte aligned copy (parse).

struct gguf_file::impl {
  std::string path;
  void* map = nullptr;  // mmap'ed file, map_size bytes; nullptr for parse() and for empty files
  size_t map_size = 0;
  struct aligned_delete {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<uint8_t[], aligned_delete> owned;  // parse() only
  const uint8_t* data = nullptr;                      // the whole image, size bytes
  uint64_t size = 0;
  gguf_detail::parsed_image img;

  ~impl() {
    if (map) ::munmap(map, map_size);
  }
};

gguf_file::gguf_file() : impl_(std::make_unique<impl>()) {}
gguf_file::gguf_file(gguf_file&&) noexcept = default;
gguf_file& gguf_file::operator=(gguf_file&&) noexcept = default;
gguf_file::~gguf_file() = default;

result<gguf_file> gguf_file::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io_error, "gguf: cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error(errc::io_error, "gguf: cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(errc::io_error, "gguf: '" + path + "' is not a regular file");
  }
  gguf_file f;
  f.impl_->path = path;
  f.impl_->size = static_cast<uint64_t>(st.st_size);
  if (st.st_size > 0) {  // mmap rejects length 0; an empty file fails in the parser as truncated
    void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return make_error(errc::io_error, "gguf: cannot mmap '" + path + "': " + std::strerror(e));
    }
    f.impl_->map = m;
    f.impl_->map_size = static_cast<size_t>(st.st_size);
    f.impl_->data = static_cast<const uint8_t*>(m);
  }
  ::close(fd);  // the mapping keeps the file alive
  auto img = gguf_detail::parse_image(f.impl_->data, f.impl_->size);
  if (!img) return make_error(img.err().code, "gguf: " + path + ": " + img.err().message);
  f.impl_->img = std::move(img).value();
  return f;
}

result<gguf_file> gguf_file::parse(const uint8_t* data, size_t size) {
  if (!data && size > 0) return make_error(errc::invalid_argument, "gguf: parse() given null data");
  gguf_file f;
  // Round up so a zero-size image still gets a (non-null, unread) buffer.
  f.impl_->owned.reset(new (std::align_val_t(64)) uint8_t[size ? size : 1]);
  if (size) std::memcpy(f.impl_->owned.get(), data, size);
  f.impl_->data = f.impl_->owned.get();
  f.impl_->size = size;
  auto img = gguf_detail::parse_image(f.impl_->data, f.impl_->size);
  if (!img) return make_error(img.err().code, "gguf: " + img.err().message);
  f.impl_->img = std::move(img).value();
  return f;
}

uint32_t gguf_file::version() const { return impl_->img.version; }
uint64_t gguf_file::alignment() const { return impl_->img.alignment; }
uint64_t gguf_file::data_offset() const { return impl_->img.data_offset; }
const std::string& gguf_file::path() const { return impl_->path; }
const std::vector<gguf_kv>& gguf_file::metadata() const { return impl_->img.kvs; }
const std::vector<gguf_tensor_info>& gguf_file::tensors() const { return impl_->img.tensors; }
const uint8_t* gguf_file::file_data() const { return impl_->data; }
uint64_t gguf_file::file_size() const { return impl_->size; }

const gguf_value* gguf_file::find(std::string_view key) const {
  auto it = impl_->img.kv_index.find(key);
  return it == impl_->img.kv_index.end() ? nullptr : &impl_->img.kvs[it->second].value;
}

const gguf_tensor_info* gguf_file::find_tensor(std::string_view name) const {
  auto it = impl_->img.tensor_index.find(name);
  return it == impl_->img.tensor_index.end() ? nullptr : &impl_->img.tensors[it->second];
}

const uint8_t* gguf_file::tensor_data(const gguf_tensor_info& t) const {
  // The parser checked data_offset + offset + n_bytes <= size for every tensor it produced.
  return impl_->data + impl_->img.data_offset + t.offset;
}

// ---------------------------------------------------------------------------------------------------------------
// Typed access. One conversion routine serves scalars and array elements.

namespace {

template <class T>
const char* target_name() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (std::is_same_v<T, float>) return "float";
  else if constexpr (std::is_same_v<T, double>) return "double";
  else if constexpr (std::is_signed_v<T>) {
    switch (sizeof(T)) {
      case 1: return "int8";
      case 2: return "int16";
      case 4: return "int32";
      default: return "int64";
    }
  } else {
    switch (sizeof(T)) {
      case 1: return "uint8";
      case 2: return "uint16";
      case 4: return "uint32";
      default: return "uint64";
    }
  }
}

// Whether a value of type t is the right kind for T (range aside).
template <class T>
bool kind_matches(gguf_type t) {
  if constexpr (std::is_same_v<T, bool>) return t == gguf_type::boolean;
  else if constexpr (std::is_same_v<T, std::string>) return t == gguf_type::string;
  else if constexpr (std::is_floating_point_v<T>) return t == gguf_type::f32 || t == gguf_type::f64;
  else return integer_type(t);
}

std::string value_text(const gguf_value& v) {
  if (v.is_signed()) return std::to_string(static_cast<int64_t>(v.u));
  if (v.is_integer()) return std::to_string(v.u);
  if (v.type == gguf_type::f32 || v.type == gguf_type::f64) return std::to_string(v.f);
  return gguf_type_name(v.type);
}

std::string key_text(std::string_view key, int64_t index) {
  std::string s = "key '" + std::string(key) + "'";
  if (index >= 0) s += "[" + std::to_string(index) + "]";
  return s;
}

// Messages name the key, and the element when index >= 0; they are built only on failure.
template <class T>
result<T> convert(const gguf_value& v, std::string_view key, int64_t index) {
  if (!kind_matches<T>(v.type)) {
    return make_error(errc::bad_format, "gguf: " + key_text(key, index) + " is " + gguf_type_name(v.type) +
                                            ", not convertible to " + target_name<T>());
  }
  if constexpr (std::is_same_v<T, bool>) {
    return v.u != 0;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return v.str;
  } else if constexpr (std::is_floating_point_v<T>) {
    T x = static_cast<T>(v.f);
    if (std::isfinite(v.f) && !std::isfinite(x)) {
      return make_error(errc::invalid_argument,
                        "gguf: " + key_text(key, index) + " = " + value_text(v) + " does not fit " + target_name<T>());
    }
    return x;
  } else {
    bool fits;
    if (v.is_signed()) {
      int64_t s = static_cast<int64_t>(v.u);
      if constexpr (std::is_signed_v<T>) {
        fits = s >= std::numeric_limits<T>::min() && s <= std::numeric_limits<T>::max();
      } else {
        fits = s >= 0 && static_cast<uint64_t>(s) <= std::numeric_limits<T>::max();
      }
    } else {
      fits = v.u <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    }
    if (!fits) {
      return make_error(errc::invalid_argument, "gguf: " + key_text(key, index) + " = " + value_text(v) + " (" +
                                                    gguf_type_name(v.type) + ") does not fit " + target_name<T>());
    }
    if (v.is_signed()) return static_cast<T>(static_cast<int64_t>(v.u));
    return static_cast<T>(v.u);
  }
}

}  // namespace

template <class T>
result<T> gguf_file::get(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) return make_error(errc::missing, "gguf: " + key_text(key, -1) + " is missing");
  return convert<T>(*v, key, -1);
}

template <class T>
T gguf_file::get_or(std::string_view key, T fallback) const {
  auto r = get<T>(key);
  return r.ok() ? std::move(r).value() : fallback;
}

template <class T>
result<std::vector<T>> gguf_file::get_array(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) return make_error(errc::missing, "gguf: " + key_text(key, -1) + " is missing");
  if (v->type != gguf_type::array) {
    return make_error(errc::bad_format,
                      "gguf: " + key_text(key, -1) + " is " + gguf_type_name(v->type) + ", not an array");
  }
  std::vector<T> out;
  if (v->arr.empty()) return out;  // writers disagree on the element type of empty arrays: accept any
  if (!kind_matches<T>(v->elem_type)) {
    return make_error(errc::bad_format, "gguf: " + key_text(key, -1) + " is an array of " +
                                            gguf_type_name(v->elem_type) + ", not convertible to " + target_name<T>());
  }
  out.reserve(v->arr.size());
  for (size_t i = 0; i < v->arr.size(); ++i) {
    const gguf_value& e = v->arr[i];
    if constexpr (std::is_same_v<T, std::string>) {
      out.push_back(e.str);  // kind checked above; skip the per-element copy through result<>
    } else {
      auto r = convert<T>(e, key, static_cast<int64_t>(i));
      if (!r) return r.err();
      out.push_back(*r);
    }
  }
  return out;
}

#define LIME_GGUF_INSTANTIATE(T)                                                   \
  template result<T> gguf_file::get<T>(std::string_view key) const;                \
  template T gguf_file::get_or<T>(std::string_view key, T fallback) const;         \
  template result<std::vector<T>> gguf_file::get_array<T>(std::string_view key) const;
LIME_GGUF_INSTANTIATE(bool)
LIME_GGUF_INSTANTIATE(uint8_t)
LIME_GGUF_INSTANTIATE(int8_t)
LIME_GGUF_INSTANTIATE(uint16_t)
LIME_GGUF_INSTANTIATE(int16_t)
LIME_GGUF_INSTANTIATE(uint32_t)
LIME_GGUF_INSTANTIATE(int32_t)
LIME_GGUF_INSTANTIATE(uint64_t)
LIME_GGUF_INSTANTIATE(int64_t)
LIME_GGUF_INSTANTIATE(float)
LIME_GGUF_INSTANTIATE(double)
LIME_GGUF_INSTANTIATE(std::string)
#undef LIME_GGUF_INSTANTIATE

}  // namespace lime
