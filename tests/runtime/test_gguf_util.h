// Helpers for the GGUF tests: build images with the writer, find and patch bytes in them, build values.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/gguf_writer.h"

namespace lime::test {

inline std::vector<uint8_t> write_or_die(const gguf_writer& w) {
  auto r = w.write_memory();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  return r.ok() ? std::move(r).value() : std::vector<uint8_t>{};
}

// Position of the first occurrence of `needle` (a key or tensor name) in the image; fails the test when absent.
inline size_t find_bytes(const std::vector<uint8_t>& buf, std::string_view needle, size_t from = 0) {
  for (size_t i = from; i + needle.size() <= buf.size(); ++i) {
    if (std::memcmp(buf.data() + i, needle.data(), needle.size()) == 0) return i;
  }
  ADD_FAILURE() << "bytes '" << needle << "' not found";
  return 0;
}

template <class T>
void poke(std::vector<uint8_t>& buf, size_t pos, T v) {
  ASSERT_LE(pos + sizeof(T), buf.size());
  std::memcpy(buf.data() + pos, &v, sizeof(T));
}

template <class T>
T peek(const std::vector<uint8_t>& buf, size_t pos) {
  T v{};
  if (pos + sizeof(T) <= buf.size()) std::memcpy(&v, buf.data() + pos, sizeof(T));
  return v;
}

inline result<gguf_file> parse_bytes(const std::vector<uint8_t>& b) { return gguf_file::parse(b.data(), b.size()); }

// Raw little-endian byte builder for files the writer cannot express.
struct raw_bytes {
  std::vector<uint8_t> b;
  template <class T>
  raw_bytes& put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
    return *this;
  }
  raw_bytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  raw_bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    put<uint32_t>(0x46554747).put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
    return *this;
  }
};

inline gguf_value make_int(gguf_type t, int64_t v) {
  gguf_value g;
  g.type = t;
  g.u = static_cast<uint64_t>(v);
  // Unsigned types keep only their own bits, as the reader stores them.
  switch (t) {
    case gguf_type::u8: g.u &= 0xff; break;
    case gguf_type::u16: g.u &= 0xffff; break;
    case gguf_type::u32: g.u &= 0xffffffffu; break;
    default: break;
  }
  return g;
}

inline gguf_value make_float(gguf_type t, double v) {
  gguf_value g;
  g.type = t;
  g.f = v;
  return g;
}

inline gguf_value make_str(std::string s) {
  gguf_value g;
  g.type = gguf_type::string;
  g.str = std::move(s);
  return g;
}

inline gguf_value make_arr(gguf_type elem, std::vector<gguf_value> items) {
  gguf_value g;
  g.type = gguf_type::array;
  g.elem_type = elem;
  g.arr = std::move(items);
  return g;
}

// Deep equality; floats compare by bits (NaN == NaN with the same payload).
inline bool same_value(const gguf_value& a, const gguf_value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case gguf_type::f32: case gguf_type::f64: return std::memcmp(&a.f, &b.f, sizeof(double)) == 0;
    case gguf_type::string: return a.str == b.str;
    case gguf_type::array:
      if (a.elem_type != b.elem_type || a.arr.size() != b.arr.size()) return false;
      for (size_t i = 0; i < a.arr.size(); ++i) {
        if (!same_value(a.arr[i], b.arr[i])) return false;
      }
      return true;
    default: return a.u == b.u;
  }
}

}  // namespace lime::test
