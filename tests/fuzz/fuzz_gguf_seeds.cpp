// Writes the seed corpus for fuzz_gguf: small GGUF files shrunk from real models (arrays cut to 3 elements,
// 4 tensors cut to one or two blocks), the first 4 KiB of each model, and synthetic files covering every type.
// Usage: fuzz_gguf_seeds OUT_DIR [model.gguf ...]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/gguf_writer.h"

namespace {

bool save(const std::string& path, const uint8_t* data, size_t n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(data, 1, n, f) == n;
  return std::fclose(f) == 0 && ok;
}

lime::gguf_value shrink(const lime::gguf_value& v) {
  lime::gguf_value out = v;
  if (v.type == lime::gguf_type::array) {
    out.arr.clear();
    for (size_t i = 0; i < v.arr.size() && i < 3; ++i) out.arr.push_back(shrink(v.arr[i]));
  }
  return out;
}

std::string base_name(const std::string& p) {
  size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

lime::gguf_value scalar(lime::gguf_type t, uint64_t u, double f = 0) {
  lime::gguf_value v;
  v.type = t;
  v.u = u;
  v.f = f;
  return v;
}

lime::gguf_value array(lime::gguf_type elem, std::vector<lime::gguf_value> items) {
  lime::gguf_value v;
  v.type = lime::gguf_type::array;
  v.elem_type = elem;
  v.arr = std::move(items);
  return v;
}

// Every value type, nested arrays and a few tensor types, at the given alignment.
lime::result<std::vector<uint8_t>> synthetic(uint32_t alignment, uint32_t version) {
  using lime::gguf_type;
  lime::gguf_writer w;
  w.set_version(version);
  w.set_alignment(alignment);
  w.set_str("general.architecture", "llama");
  w.set("u8", scalar(gguf_type::u8, 7));
  w.set("i8", scalar(gguf_type::i8, static_cast<uint64_t>(-3)));
  w.set("u16", scalar(gguf_type::u16, 65535));
  w.set("i16", scalar(gguf_type::i16, static_cast<uint64_t>(-300)));
  w.set_u32("u32", 4294967295u);
  w.set_i32("i32", -1);
  w.set_u64("u64", 1ull << 40);
  w.set("i64", scalar(gguf_type::i64, static_cast<uint64_t>(-5)));
  w.set_f32("f32", 1e-5f);
  w.set("f64", scalar(gguf_type::f64, 0, 0.25));
  w.set_bool("bool", true);
  w.set_str("empty", "");
  w.set_arr_str("tokens", {"<s>", "", "\xe2\x96\x81hi"});
  w.set_arr_f32("scores", {0.5f, -1.0f});
  w.set_arr_i32("types", {1, 3});
  w.set("nested", array(gguf_type::array, {array(gguf_type::u8, {scalar(gguf_type::u8, 1)}),
                                           array(gguf_type::string, {})}));
  static uint8_t payload[512];
  for (int i = 0; i < 512; ++i) payload[i] = static_cast<uint8_t>(i);
  auto add = [&](const char* name, lime::tensor_type t, std::vector<int64_t> dims) {
    return w.add_tensor(name, t, dims, payload);
  };
  if (auto r = add("a", lime::tensor_type::f32, {4, 2}); !r) return r.err();
  if (auto r = add("b", lime::tensor_type::f16, {3}); !r) return r.err();
  if (auto r = add("c", lime::tensor_type::q4_0, {32, 2}); !r) return r.err();
  if (auto r = add("d", lime::tensor_type::q8_0, {32}); !r) return r.err();
  if (auto r = add("e", lime::tensor_type::q4_k, {256}); !r) return r.err();
  return w.write_memory();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [model.gguf ...]\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  int written = 0;
  struct variant {
    uint32_t alignment, version;
  };
  for (variant v : {variant{32, 3}, variant{64, 3}, variant{8, 2}}) {
    auto bytes = synthetic(v.alignment, v.version);
    if (!bytes) {
      std::fprintf(stderr, "synthetic seed: %s\n", bytes.err().message.c_str());
      return 1;
    }
    std::string p = out + "/synthetic-a" + std::to_string(v.alignment) + "-v" + std::to_string(v.version) + ".gguf";
    if (!save(p, bytes->data(), bytes->size())) return 1;
    ++written;
  }
  for (int i = 2; i < argc; ++i) {
    auto f = lime::gguf_file::open(argv[i]);
    if (!f) {
      std::fprintf(stderr, "skipping %s: %s\n", argv[i], f.err().message.c_str());
      continue;
    }
    const std::string name = base_name(argv[i]);
    size_t head = static_cast<size_t>(std::min<uint64_t>(f->file_size(), 4096));
    if (!save(out + "/head-" + name, f->file_data(), head)) return 1;

    lime::gguf_writer w;
    w.set_version(f->version());
    for (const lime::gguf_kv& kv : f->metadata()) w.set(kv.key, shrink(kv.value));
    for (size_t t = 0; t < f->tensors().size() && t < 4; ++t) {
      const lime::gguf_tensor_info& info = f->tensors()[t];
      std::vector<int64_t> dims(info.n_dims);
      dims[0] = lime::tensor_type_traits(info.type).block_elems;  // one block per row: never more than the original
      for (uint32_t d = 1; d < info.n_dims; ++d) dims[d] = std::min<int64_t>(info.ne[d], 2);
      if (auto r = w.add_tensor(info.name, info.type, dims, f->tensor_data(info)); !r) {
        std::fprintf(stderr, "%s: %s\n", name.c_str(), r.err().message.c_str());
        return 1;
      }
    }
    auto bytes = w.write_memory();
    if (!bytes || !save(out + "/small-" + name, bytes->data(), bytes->size())) return 1;
    written += 2;
  }
  std::printf("fuzz_gguf_seeds: wrote %d seeds to %s\n", written, out.c_str());
  return 0;
}
