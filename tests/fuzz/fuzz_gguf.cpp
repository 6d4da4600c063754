// libFuzzer target: gguf_file::parse on arbitrary bytes. A rejected input must carry a proper error; an accepted
// one is read end to end (every value, every tensor byte) and must survive a writer round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/gguf.h"
#include "runtime/gguf_writer.h"

namespace {

[[noreturn]] void die(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_gguf: %s %s\n", what, detail.c_str());
  std::abort();
}

bool same(const lime::gguf_value& a, const lime::gguf_value& b) {
  using lime::gguf_type;
  if (a.type != b.type) return false;
  switch (a.type) {
    case gguf_type::f32: case gguf_type::f64: return std::memcmp(&a.f, &b.f, sizeof(double)) == 0;
    case gguf_type::string: return a.str == b.str;
    case gguf_type::array:
      if (a.elem_type != b.elem_type || a.arr.size() != b.arr.size()) return false;
      for (size_t i = 0; i < a.arr.size(); ++i) {
        if (!same(a.arr[i], b.arr[i])) return false;
      }
      return true;
    default: return a.u == b.u;
  }
}

// Reads everything the file exposes; the sanitizers flag any bad pointer or length.
uint64_t touch(const lime::gguf_file& f) {
  uint64_t sum = 0;
  for (const lime::gguf_kv& kv : f.metadata()) {
    if (f.find(kv.key) != &kv.value) die("find() does not return the entry for", kv.key);
    sum += f.get_or<uint64_t>(kv.key, 0) + f.get_or<int8_t>(kv.key, 0) + f.get_or<bool>(kv.key, false);
    sum += static_cast<uint64_t>(f.get_or<double>(kv.key, 0.0) != 0.0) + f.get_or<std::string>(kv.key, "").size();
    if (auto a = f.get_array<std::string>(kv.key); a.ok()) sum += a->size();
    if (auto a = f.get_array<int32_t>(kv.key); a.ok()) sum += a->size();
    if (auto a = f.get_array<float>(kv.key); a.ok()) sum += a->size();
  }
  for (const lime::gguf_tensor_info& t : f.tensors()) {
    if (f.find_tensor(t.name) != &t) die("find_tensor() does not return", t.name);
    const uint8_t* d = f.tensor_data(t);
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += d[i];
  }
  return sum;
}

void round_trip(const lime::gguf_file& f) {
  lime::gguf_writer w;
  w.set_version(f.version());
  w.copy_metadata(f);
  for (const lime::gguf_tensor_info& t : f.tensors()) {
    std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
    auto r = w.add_tensor(t.name, t.type, dims, f.tensor_data(t));
    if (!r) die("writer refused a tensor the reader accepted:", r.err().message);
  }
  auto bytes = w.write_memory();
  if (!bytes) die("writer failed on a valid file:", bytes.err().message);
  auto g = lime::gguf_file::parse(bytes->data(), bytes->size());
  if (!g) die("reader rejected the writer's output:", g.err().message);
  if (g->alignment() != f.alignment() || g->metadata().size() != f.metadata().size() ||
      g->tensors().size() != f.tensors().size()) {
    die("round trip changed the file's shape");
  }
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    const lime::gguf_kv& a = f.metadata()[i];
    const lime::gguf_kv& b = g->metadata()[i];
    if (a.key != b.key || !same(a.value, b.value)) die("round trip changed key", a.key);
  }
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const lime::gguf_tensor_info& a = f.tensors()[i];
    const lime::gguf_tensor_info& b = g->tensors()[i];
    if (a.name != b.name || a.type != b.type || a.n_dims != b.n_dims || a.n_bytes != b.n_bytes ||
        std::memcmp(a.ne, b.ne, sizeof(a.ne)) != 0 ||
        std::memcmp(f.tensor_data(a), g->tensor_data(b), a.n_bytes) != 0) {
      die("round trip changed tensor", a.name);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = lime::gguf_file::parse(data, size);
  if (!f) {
    const lime::error& e = f.err();
    if (e.code != lime::errc::bad_format && e.code != lime::errc::unsupported) die("unexpected error code:", e.message);
    if (e.message.rfind("gguf: ", 0) != 0 || e.message.find('\n') != std::string::npos) die("bad message:", e.message);
    return 0;
  }
  volatile uint64_t sink = touch(*f);
  (void)sink;
  round_trip(*f);
  return 0;
}
