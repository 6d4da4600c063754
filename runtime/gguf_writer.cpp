// gguf_writer: serializes metadata, tensor infos and aligned tensor data (GGUF v3 layout). Streams files: the
// header is built in memory, tensors go straight from the caller's buffers (or one reused fill buffer) to disk.
#include "runtime/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lime {
namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

template <class T>
void put(std::vector<uint8_t>& out, T v) {  // little-endian host (checked in gguf_parse.cpp)
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

void put_str(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// Writes v's payload (not its type tag). Arrays must hold elements of their declared type.
status put_value(std::vector<uint8_t>& out, const gguf_value& v, const std::string& key) {
  switch (v.type) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::boolean:
      put<uint8_t>(out, static_cast<uint8_t>(v.u));
      break;
    case gguf_type::u16: case gguf_type::i16: put<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case gguf_type::u32: case gguf_type::i32: put<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case gguf_type::u64: case gguf_type::i64: put<uint64_t>(out, v.u); break;
    case gguf_type::f32: put<float>(out, static_cast<float>(v.f)); break;
    case gguf_type::f64: put<double>(out, v.f); break;
    case gguf_type::string: put_str(out, v.str); break;
    case gguf_type::array:
      put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      put<uint64_t>(out, v.arr.size());
      for (const gguf_value& e : v.arr) {
        if (e.type != v.elem_type) {
          return make_error(errc::invalid_argument, "gguf writer: key '" + key + "' array of " +
                                                        gguf_type_name(v.elem_type) + " holds a " +
                                                        gguf_type_name(e.type) + " element");
        }
        LIME_TRY_VOID(put_value(out, e, key));
      }
      break;
    default:
      return make_error(errc::invalid_argument, "gguf writer: key '" + key + "' has unknown value type " +
                                                    std::to_string(static_cast<uint32_t>(v.type)));
  }
  return {};
}

gguf_value scalar(gguf_type t, uint64_t u) {
  gguf_value v;
  v.type = t;
  v.u = u;
  return v;
}

// Writes all of [p, p+n) to fd, in chunks the kernel accepts.
status write_all(int fd, const uint8_t* p, uint64_t n, const std::string& path) {
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, uint64_t{1} << 30));
    ssize_t w = ::write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::io_error, "gguf writer: write to '" + path + "' failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<uint64_t>(w);
  }
  return {};
}

}  // namespace

gguf_writer::gguf_writer() = default;

void gguf_writer::set_version(uint32_t v) { version_ = v; }

void gguf_writer::set_alignment(uint32_t a) {
  alignment_ = a;
  bool present = std::any_of(kvs_.begin(), kvs_.end(), [](const gguf_kv& kv) { return kv.key == "general.alignment"; });
  if (a != 32 || present) set("general.alignment", scalar(gguf_type::u32, a));
}

void gguf_writer::set(const std::string& key, gguf_value value) {
  // general.alignment as a u32 is the layout itself: keep the padding in step with the key that describes it.
  // Any other type is written as given (tests use that to build bad files) and the padding stays as it was.
  if (key == "general.alignment" && value.type == gguf_type::u32) alignment_ = static_cast<uint32_t>(value.u);
  for (gguf_kv& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kvs_.push_back(gguf_kv{key, std::move(value)});
}

void gguf_writer::set_u32(const std::string& key, uint32_t v) { set(key, scalar(gguf_type::u32, v)); }
void gguf_writer::set_i32(const std::string& key, int32_t v) {
  set(key, scalar(gguf_type::i32, static_cast<uint64_t>(static_cast<int64_t>(v))));
}
void gguf_writer::set_u64(const std::string& key, uint64_t v) { set(key, scalar(gguf_type::u64, v)); }
void gguf_writer::set_bool(const std::string& key, bool v) { set(key, scalar(gguf_type::boolean, v ? 1 : 0)); }

void gguf_writer::set_f32(const std::string& key, float v) {
  gguf_value g;
  g.type = gguf_type::f32;
  g.f = v;
  set(key, std::move(g));
}

void gguf_writer::set_str(const std::string& key, const std::string& v) {
  gguf_value g;
  g.type = gguf_type::string;
  g.str = v;
  set(key, std::move(g));
}

void gguf_writer::set_arr_str(const std::string& key, const std::vector<std::string>& v) {
  gguf_value g;
  g.type = gguf_type::array;
  g.elem_type = gguf_type::string;
  g.arr.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    g.arr[i].type = gguf_type::string;
    g.arr[i].str = v[i];
  }
  set(key, std::move(g));
}

void gguf_writer::set_arr_f32(const std::string& key, const std::vector<float>& v) {
  gguf_value g;
  g.type = gguf_type::array;
  g.elem_type = gguf_type::f32;
  g.arr.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    g.arr[i].type = gguf_type::f32;
    g.arr[i].f = v[i];
  }
  set(key, std::move(g));
}

void gguf_writer::set_arr_i32(const std::string& key, const std::vector<int32_t>& v) {
  gguf_value g;
  g.type = gguf_type::array;
  g.elem_type = gguf_type::i32;
  g.arr.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) g.arr[i] = scalar(gguf_type::i32, static_cast<uint64_t>(int64_t{v[i]}));
  set(key, std::move(g));
}

void gguf_writer::copy_metadata(const gguf_file& from, const std::function<bool(const std::string&)>& skip) {
  for (const gguf_kv& kv : from.metadata()) {
    if (skip && skip(kv.key)) continue;
    set(kv.key, kv.value);
  }
}

result<void> gguf_writer::add_tensor(const std::string& name, tensor_type type, const std::vector<int64_t>& dims,
                                     const void* data, fill_fn fill) {
  auto bad = [&](const std::string& why) {
    return make_error(errc::invalid_argument, "gguf writer: tensor '" + name + "': " + why);
  };
  if (name.empty()) return bad("empty name");
  for (const tensor_entry& t : tensors_) {
    if (t.name == name) return bad("added twice");
  }
  const tensor_type_info* info = tensor_type_lookup(static_cast<uint32_t>(type));
  if (!info) return bad("unknown tensor type id " + std::to_string(static_cast<uint32_t>(type)));
  if (dims.empty() || dims.size() > 4) return bad(std::to_string(dims.size()) + " dims (need 1..4)");
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 1) return bad("dim " + std::to_string(d) + " (must be >= 1)");
    if (__builtin_mul_overflow(n, d, &n)) return bad("element count overflows");
  }
  if (dims[0] % info->block_elems != 0) {
    return bad("ne[0] = " + std::to_string(dims[0]) + " is not a multiple of the block size " +
               std::to_string(info->block_elems));
  }
  uint64_t n_bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(n / info->block_elems), static_cast<uint64_t>(info->block_bytes),
                             &n_bytes)) {
    return bad("byte size overflows");
  }
  if (!data && !fill) return bad("neither data nor a fill function");
  tensors_.push_back(tensor_entry{name, type, dims, n_bytes, data, std::move(fill)});
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// Serialization: header (everything before the data section, padded) in memory, then tensor data.

namespace {

struct layout {
  std::vector<uint8_t> header;    // up to the data section, padded to the alignment
  std::vector<uint64_t> offsets;  // per tensor, from the data section
  uint64_t data_bytes = 0;        // data section, each tensor padded
};

// Entries: the writer's private tensor list (a template so it needs no name for that type).
template <class Entries>
result<layout> build_layout(uint32_t version, uint32_t alignment, const std::vector<gguf_kv>& kvs,
                            const Entries& tensors) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return make_error(errc::invalid_argument,
                      "gguf writer: alignment " + std::to_string(alignment) + " is not a nonzero power of two");
  }
  layout l;
  put<uint32_t>(l.header, 0x46554747);  // "GGUF"
  put<uint32_t>(l.header, version);
  put<uint64_t>(l.header, tensors.size());
  put<uint64_t>(l.header, kvs.size());
  for (const gguf_kv& kv : kvs) {
    put_str(l.header, kv.key);
    put<uint32_t>(l.header, static_cast<uint32_t>(kv.value.type));
    LIME_TRY_VOID(put_value(l.header, kv.value, kv.key));
  }
  for (const auto& t : tensors) {
    put_str(l.header, t.name);
    put<uint32_t>(l.header, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put<int64_t>(l.header, d);
    put<uint32_t>(l.header, static_cast<uint32_t>(t.type));
    put<uint64_t>(l.header, l.data_bytes);
    l.offsets.push_back(l.data_bytes);
    l.data_bytes += align_up(t.n_bytes, alignment);
  }
  l.header.resize(align_up(l.header.size(), alignment), 0);
  return l;
}

}  // namespace

result<std::vector<uint8_t>> gguf_writer::write_memory() const {
  LIME_TRY(layout l, build_layout(version_, alignment_, kvs_, tensors_));
  std::vector<uint8_t> out = std::move(l.header);
  const uint64_t data_start = out.size();
  out.resize(data_start + l.data_bytes, 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const tensor_entry& t = tensors_[i];
    uint8_t* dst = out.data() + data_start + l.offsets[i];
    if (t.data) {
      std::memcpy(dst, t.data, t.n_bytes);
    } else {
      auto r = t.fill(dst, t.n_bytes);
      if (!r) return r.err();
    }
  }
  return out;
}

result<void> gguf_writer::write_file(const std::string& path) const {
  LIME_TRY(layout l, build_layout(version_, alignment_, kvs_, tensors_));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(errc::io_error, "gguf writer: cannot create '" + path + "': " + std::strerror(errno));
  }
  auto fail = [&](error e) -> result<void> {
    ::close(fd);
    ::unlink(path.c_str());  // never leave a partial file that looks like a model
    return e;
  };
  status s = write_all(fd, l.header.data(), l.header.size(), path);
  if (!s) return fail(s.err());
  // Each tensor and its padding go out in one write; fill tensors share one buffer grown to the largest.
  std::vector<uint8_t> buf;
  static const uint8_t zeros[256] = {};
  for (const tensor_entry& t : tensors_) {
    uint64_t padded = align_up(t.n_bytes, alignment_);
    if (t.data) {
      s = write_all(fd, static_cast<const uint8_t*>(t.data), t.n_bytes, path);
      for (uint64_t left = padded - t.n_bytes; s && left > 0;) {
        uint64_t n = std::min<uint64_t>(left, sizeof(zeros));
        s = write_all(fd, zeros, n, path);
        left -= n;
      }
    } else {
      if (buf.size() < padded) buf.resize(padded);
      auto r = t.fill(buf.data(), t.n_bytes);
      if (!r) return fail(r.err());
      std::memset(buf.data() + t.n_bytes, 0, padded - t.n_bytes);
      s = write_all(fd, buf.data(), padded, path);
    }
    if (!s) return fail(s.err());
  }
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(path.c_str());
    return make_error(errc::io_error, "gguf writer: closing '" + path + "' failed: " + std::strerror(e));
  }
  return {};
}

}  // namespace lime
