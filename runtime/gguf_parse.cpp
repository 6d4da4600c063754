// The GGUF v2/v3 parser: reads and validates an image held in memory (mapped or owned) and never reads past it.
// Every count is checked against the bytes that remain before anything is allocated for it.
#include "runtime/gguf_parse.h"

#include <algorithm>
#include <cstring>
#include <string>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host (GGUF files are little-endian)"
#endif

namespace lime::gguf_detail {
namespace {

constexpr uint32_t k_magic = 0x46554747;  // "GGUF" read as a little-endian u32

// Fewest bytes one encoded value of type t can take (a string: its u64 length; an array: type + count).
uint64_t min_encoded_size(gguf_type t) {
  switch (t) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::boolean: return 1;
    case gguf_type::u16: case gguf_type::i16: return 2;
    case gguf_type::u32: case gguf_type::i32: case gguf_type::f32: return 4;
    case gguf_type::u64: case gguf_type::i64: case gguf_type::f64: case gguf_type::string: return 8;
    case gguf_type::array: return 12;
  }
  return 1;
}

bool valid_type(uint32_t raw) { return raw <= static_cast<uint32_t>(gguf_type::f64); }

std::string quoted(std::string_view s) {
  // Names come from the file: keep messages one line and short whatever they hold.
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}

error bad(std::string msg) { return make_error(errc::bad_format, std::move(msg)); }

class cursor {
 public:
  cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <class T>
  bool read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // n must be <= remaining() (checked by the caller).
  const char* take(uint64_t n) {
    const char* p = reinterpret_cast<const char*>(data_ + pos_);
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

class parser {
 public:
  parser(const uint8_t* data, uint64_t size) : cur_(data, size), size_(size) {}
  result<parsed_image> run();

 private:
  status read_header(uint64_t* n_tensors, uint64_t* n_kv);
  status read_kv(uint64_t index, uint64_t n_kv);
  // what() names the thing being read for messages ("key 'x'"); called only on failure.
  template <class What>
  status read_string(std::string* out, What what);
  status read_value(gguf_type t, gguf_value* out, int depth, const std::string& key);
  status read_tensor_info(uint64_t index, uint64_t n_tensors);
  status resolve_alignment();
  status check_tensor_ranges();

  error truncated(const std::string& what) const {
    return bad("truncated: " + what + " runs past the end of the data (" + std::to_string(size_) + " bytes)");
  }

  cursor cur_;
  uint64_t size_;
  uint64_t n_values_ = 0;
  parsed_image img_;
};

status parser::read_header(uint64_t* n_tensors, uint64_t* n_kv) {
  uint32_t magic = 0;
  if (!cur_.read(&magic)) return truncated("header magic");
  if (magic != k_magic) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", magic);
    return bad(std::string("bad magic ") + hex + " (not a GGUF file)");
  }
  if (!cur_.read(&img_.version)) return truncated("header version");
  uint32_t v = img_.version;
  if (v != 2 && v != 3) {
    uint32_t swapped = __builtin_bswap32(v);
    std::string hint = (swapped == 2 || swapped == 3) ? " (a big-endian file?)" : "";
    if (v == 1) hint = " (GGUF v1 used 32-bit counts; re-convert the model)";
    return make_error(errc::unsupported, "unsupported GGUF version " + std::to_string(v) + hint);
  }
  if (!cur_.read(n_tensors)) return truncated("header tensor count");
  if (!cur_.read(n_kv)) return truncated("header metadata count");
  // Smallest key/value: 8-byte length + 1-byte key + 4-byte type + 1-byte value.
  if (*n_kv > cur_.remaining() / 13) {
    return bad("header claims " + std::to_string(*n_kv) + " metadata entries but only " +
               std::to_string(cur_.remaining()) + " bytes follow");
  }
  return {};
}

template <class What>
status parser::read_string(std::string* out, What what) {
  uint64_t len = 0;
  if (!cur_.read(&len)) return truncated(what() + " string length");
  if (len > cur_.remaining()) {
    return bad(what() + ": string length " + std::to_string(len) + " exceeds the " +
               std::to_string(cur_.remaining()) + " bytes left");
  }
  out->assign(cur_.take(len), len);
  return {};
}

status parser::read_value(gguf_type t, gguf_value* out, int depth, const std::string& key) {
  out->type = t;
  auto scalar = [&](auto v) -> status {
    if (!cur_.read(&v)) return truncated("key " + quoted(key) + " value");
    using V = decltype(v);
    if constexpr (std::is_floating_point_v<V>) {
      out->f = static_cast<double>(v);
    } else if constexpr (std::is_signed_v<V>) {
      out->u = static_cast<uint64_t>(static_cast<int64_t>(v));  // sign-extended, as gguf_value documents
    } else {
      out->u = static_cast<uint64_t>(v);
    }
    return {};
  };
  switch (t) {
    case gguf_type::u8: return scalar(uint8_t{});
    case gguf_type::i8: return scalar(int8_t{});
    case gguf_type::u16: return scalar(uint16_t{});
    case gguf_type::i16: return scalar(int16_t{});
    case gguf_type::u32: return scalar(uint32_t{});
    case gguf_type::i32: return scalar(int32_t{});
    case gguf_type::u64: return scalar(uint64_t{});
    case gguf_type::i64: return scalar(int64_t{});
    case gguf_type::f32: return scalar(float{});
    case gguf_type::f64: return scalar(double{});
    case gguf_type::boolean: {
      uint8_t b = 0;
      if (!cur_.read(&b)) return truncated("key " + quoted(key) + " value");
      if (b > 1) return bad("key " + quoted(key) + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
      out->u = b;
      return {};
    }
    case gguf_type::string: return read_string(&out->str, [&] { return "key " + quoted(key); });
    case gguf_type::array: break;
  }

  if (depth >= k_max_array_depth) {
    return bad("key " + quoted(key) + ": arrays nested deeper than " + std::to_string(k_max_array_depth) +
               " levels");
  }
  uint32_t raw_elem = 0;
  uint64_t count = 0;
  if (!cur_.read(&raw_elem)) return truncated("key " + quoted(key) + " array type");
  if (!valid_type(raw_elem)) {
    return bad("key " + quoted(key) + ": unknown array element type " + std::to_string(raw_elem));
  }
  if (!cur_.read(&count)) return truncated("key " + quoted(key) + " array count");
  gguf_type elem = static_cast<gguf_type>(raw_elem);
  out->elem_type = elem;
  if (count > cur_.remaining() / min_encoded_size(elem)) {
    return bad("key " + quoted(key) + ": array claims " + std::to_string(count) + " elements of type " +
               gguf_type_name(elem) + " but only " + std::to_string(cur_.remaining()) + " bytes remain");
  }
  n_values_ += count;
  if (n_values_ > k_max_metadata_values) {
    return make_error(errc::unsupported, "key " + quoted(key) + ": metadata holds more than " +
                                             std::to_string(k_max_metadata_values) + " values");
  }
  out->arr.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    status s = read_value(elem, &out->arr[i], depth + 1, key);
    if (!s) return make_error(s.err().code, s.err().message + " (array element " + std::to_string(i) + ")");
  }
  return {};
}

status parser::read_kv(uint64_t index, uint64_t n_kv) {
  gguf_kv& kv = img_.kvs.emplace_back();
  std::string where = "metadata entry " + std::to_string(index) + " of " + std::to_string(n_kv);
  LIME_TRY_VOID(read_string(&kv.key, [&] { return where + " key"; }));
  if (kv.key.empty()) return bad(where + ": empty key");
  uint32_t raw_type = 0;
  if (!cur_.read(&raw_type)) return truncated("key " + quoted(kv.key) + " type");
  if (!valid_type(raw_type)) return bad("key " + quoted(kv.key) + ": unknown value type " + std::to_string(raw_type));
  ++n_values_;
  return read_value(static_cast<gguf_type>(raw_type), &kv.value, 0, kv.key);
}

status parser::read_tensor_info(uint64_t index, uint64_t n_tensors) {
  gguf_tensor_info& t = img_.tensors.emplace_back();
  std::string where = "tensor info " + std::to_string(index) + " of " + std::to_string(n_tensors);
  LIME_TRY_VOID(read_string(&t.name, [&] { return where + " name"; }));
  if (t.name.empty()) return bad(where + ": empty tensor name");
  std::string tn = "tensor " + quoted(t.name);
  if (!cur_.read(&t.n_dims)) return truncated(tn + " n_dims");
  if (t.n_dims < 1 || t.n_dims > 4) return bad(tn + ": n_dims " + std::to_string(t.n_dims) + " is not in 1..4");
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    if (!cur_.read(&t.ne[d])) return truncated(tn + " dims");
    // Zero-size tensors are rejected: no model needs them and they would make empty, aliasing data ranges.
    if (t.ne[d] < 1) {
      return bad(tn + ": dim " + std::to_string(d) + " is " + std::to_string(t.ne[d]) + " (must be >= 1)");
    }
  }
  uint32_t raw_type = 0;
  if (!cur_.read(&raw_type)) return truncated(tn + " type");
  if (!cur_.read(&t.offset)) return truncated(tn + " offset");

  const tensor_type_info* info = tensor_type_lookup(raw_type);
  if (!info) return make_error(errc::unsupported, tn + ": unknown tensor type id " + std::to_string(raw_type));
  t.type = static_cast<tensor_type>(raw_type);
  int64_t n = 1;
  for (int d = 0; d < 4; ++d) {
    if (__builtin_mul_overflow(n, t.ne[d], &n)) return bad(tn + ": element count overflows int64");
  }
  if (t.ne[0] % info->block_elems != 0) {
    return bad(tn + ": ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " + info->name +
               " block size " + std::to_string(info->block_elems));
  }
  uint64_t blocks = static_cast<uint64_t>(n) / static_cast<uint64_t>(info->block_elems);
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(info->block_bytes), &t.n_bytes)) {
    return bad(tn + ": byte size overflows");
  }
  return {};
}

status parser::resolve_alignment() {
  auto it = img_.kv_index.find("general.alignment");
  if (it == img_.kv_index.end()) return {};
  const gguf_value& v = img_.kvs[it->second].value;
  if (v.type != gguf_type::u32) {
    return bad(std::string("key 'general.alignment' has type ") + gguf_type_name(v.type) + ", expected u32");
  }
  if (v.u == 0 || (v.u & (v.u - 1)) != 0) {
    return bad("key 'general.alignment' = " + std::to_string(v.u) + " is not a nonzero power of two");
  }
  // Every file a writer can make is at least one alignment long (its header is padded to it), so a larger one is
  // not a GGUF file; accepted, a 2 GiB alignment on a file without tensors made lime's writer pad 2 GiB when it
  // wrote the file back (found by fuzz_gguf).
  if (v.u > size_) {
    return bad("key 'general.alignment' = " + std::to_string(v.u) + " is larger than the file (" +
               std::to_string(size_) + " bytes)");
  }
  img_.alignment = v.u;
  return {};
}

status parser::check_tensor_ranges() {
  const uint64_t align = img_.alignment;
  // pos < 2^64 - 2^32 (it indexes a real buffer) and align <= 2^31: the sum cannot wrap.
  img_.data_offset = (cur_.pos() + align - 1) / align * align;
  const uint64_t avail = size_ > img_.data_offset ? size_ - img_.data_offset : 0;
  for (const gguf_tensor_info& t : img_.tensors) {
    std::string tn = "tensor " + quoted(t.name);
    if (t.offset % align != 0) {
      return bad(tn + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                 std::to_string(align));
    }
    if (t.offset > avail || t.n_bytes > avail - t.offset) {
      return bad(tn + ": data [" + std::to_string(t.offset) + ", +" + std::to_string(t.n_bytes) +
                 ") runs past end of file (data section holds " + std::to_string(avail) + " bytes)");
    }
  }
  std::vector<size_t> order(img_.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return img_.tensors[a].offset < img_.tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const gguf_tensor_info& a = img_.tensors[order[i - 1]];
    const gguf_tensor_info& b = img_.tensors[order[i]];
    if (a.offset + a.n_bytes > b.offset) {  // both in range, so no wrap
      return bad("tensors " + quoted(a.name) + " and " + quoted(b.name) + " overlap");
    }
  }
  return {};
}

result<parsed_image> parser::run() {
  uint64_t n_tensors = 0, n_kv = 0;
  LIME_TRY_VOID(read_header(&n_tensors, &n_kv));
  img_.kvs.reserve(n_kv);  // bounded by the bytes left (checked in read_header)
  for (uint64_t i = 0; i < n_kv; ++i) LIME_TRY_VOID(read_kv(i, n_kv));
  img_.kv_index.reserve(img_.kvs.size());
  for (size_t i = 0; i < img_.kvs.size(); ++i) {
    if (!img_.kv_index.emplace(img_.kvs[i].key, i).second) return bad("duplicate key " + quoted(img_.kvs[i].key));
  }

  // Smallest tensor info: 8-byte length + 1-byte name + n_dims + one dim + type + offset.
  if (n_tensors > cur_.remaining() / 33) {
    return bad("header claims " + std::to_string(n_tensors) + " tensors but only " +
               std::to_string(cur_.remaining()) + " bytes remain for their infos");
  }
  img_.tensors.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) LIME_TRY_VOID(read_tensor_info(i, n_tensors));
  img_.tensor_index.reserve(img_.tensors.size());
  for (size_t i = 0; i < img_.tensors.size(); ++i) {
    if (!img_.tensor_index.emplace(img_.tensors[i].name, i).second) {
      return bad("duplicate tensor name " + quoted(img_.tensors[i].name));
    }
  }

  LIME_TRY_VOID(resolve_alignment());
  // A file without tensors may end right after its metadata (llama.cpp's vocab-only files do): the padding to
  // the data section is only required when there is data.
  LIME_TRY_VOID(check_tensor_ranges());
  return std::move(img_);
}

}  // namespace

result<parsed_image> parse_image(const uint8_t* data, uint64_t size) {
  parser p(data, size);
  return p.run();
}

}  // namespace lime::gguf_detail
