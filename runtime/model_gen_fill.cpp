// Model generator, the producing half: the counter-based weight RNG, tensors generated and quantized row by row
// on a thread pool inside the GGUF writer's fill callbacks, the metadata, and the file/memory writers.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "kernels/cpu/math.h"
#include "kernels/cpu/quants.h"
#include "runtime/gguf.h"
#include "runtime/model_gen.h"

namespace lime {
namespace {

// splitmix64's finalizer: a bijective 64-bit mix.
inline uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ull;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z;
}

// lowbias32 (Chris Wellons' hash prospector): a bijective 32-bit mix with good avalanche.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Llama-3.1 rope scaling as divisors of each dimension pair's frequency (what llama.cpp's converter stores in
// rope_freqs.weight): 1 for short wavelengths, rope_scale for long ones, a smooth blend in between.
void rope_factors(const model_shape& s, float* out, int64_t n_pairs) {
  const double pi = 3.14159265358979323846;
  const double low_wavelen = s.rope_orig_ctx / static_cast<double>(s.rope_low_freq);
  const double high_wavelen = s.rope_orig_ctx / static_cast<double>(s.rope_high_freq);
  const double dim = static_cast<double>(2 * n_pairs);
  for (int64_t i = 0; i < n_pairs; ++i) {
    const double freq = 1.0 / cpu::pow_f64(s.rope_base, static_cast<double>(2 * i) / dim);
    const double wavelen = 2.0 * pi / freq;
    double factor = 1.0;
    if (wavelen > low_wavelen) {
      factor = s.rope_scale;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (s.rope_orig_ctx / wavelen - s.rope_low_freq) / (s.rope_high_freq - s.rope_low_freq);
      factor = 1.0 / ((1.0 - smooth) / s.rope_scale + smooth);
    }
    out[i] = static_cast<float>(factor);
  }
}

// Generates rows [0, t.n_rows) of tensor t into dst (row r at r * row_bytes), split over the pool by rows.
status fill_tensor(const model_gen_tensor& t, const model_shape& s, uint64_t seed, thread_pool& pool, uint8_t* dst,
                   uint64_t n_bytes) {
  const size_t row_bytes = tensor_row_bytes(t.type, t.k);
  if (row_bytes * static_cast<uint64_t>(t.n_rows) != n_bytes)
    return make_error(errc::internal, "model_gen: tensor '" + t.name + "' byte size disagrees with the writer's");
  if (t.name == "rope_freqs.weight") {
    std::vector<float> factors(static_cast<size_t>(t.k));
    rope_factors(s, factors.data(), t.k);
    std::memcpy(dst, factors.data(), n_bytes);
    return {};
  }
  const uint64_t stream = model_gen_stream(seed, t.name);
  const float std = t.one_d ? 0.1f : model_gen_std;
  const float mean = t.one_d ? 1.0f : 0.0f;
  std::atomic<bool> failed{false};
  const int64_t k = t.k;
  pool.parallel_for(t.n_rows, [&](int64_t begin, int64_t end, int) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = begin; r < end; ++r) {
      model_gen_values(stream, static_cast<uint64_t>(r), k, std, mean, row.data());
      uint8_t* out = dst + static_cast<uint64_t>(r) * row_bytes;
      if (!model_gen_quantize_fast(t.type, row.data(), out, k) &&
          cpu::quantize_row(t.type, row.data(), out, k) != kstatus::ok) {
        failed.store(true, std::memory_order_relaxed);
        return;
      }
    }
  });
  if (failed.load()) return make_error(errc::internal, "model_gen: cannot quantize tensor '" + t.name + "'");
  return {};
}

// tokenizer.* keys from a vocabulary GGUF whose token count must be n_vocab.
status copy_vocab(const std::string& path, int32_t n_vocab, gguf_writer& w) {
  LIME_TRY(gguf_file f, gguf_file::open(path));
  const gguf_value* tokens = f.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != gguf_type::array)
    return make_error(errc::bad_format, "vocab '" + path + "' has no tokenizer.ggml.tokens array");
  if (tokens->arr.size() != static_cast<size_t>(n_vocab)) {
    return make_error(errc::invalid_argument, "vocab '" + path + "' has " + std::to_string(tokens->arr.size()) +
                                                  " tokens but the model's n_vocab is " + std::to_string(n_vocab));
  }
  w.copy_metadata(f, [](const std::string& key) { return key.rfind("tokenizer.", 0) != 0; });
  return {};
}

bool is_quantized_file(model_ftype f) {
  return f != model_ftype::all_f32 && f != model_ftype::f16 && f != model_ftype::bf16;
}

}  // namespace

uint64_t model_gen_stream(uint64_t seed, const std::string& tensor_name) {
  return mix64(fnv1a64(tensor_name) ^ mix64(seed + 0x6a09e667f3bcc909ull));
}

// Two 32-bit hashes per element (lowbias32, keyed per row) give four 16-bit uniforms. 32-bit lanes vectorize
// (SSE2 and up), and on x86 an AVX2 clone is picked at load time: this loop makes every weight of a model.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void model_gen_values(uint64_t stream, uint64_t row, int64_t n, float std, float mean, float* out) {
  // Sum of four 16-bit uniforms: mean 4 * 65535 / 2, variance 4 * (65536^2 - 1) / 12.
  const double sd = std::sqrt((65536.0 * 65536.0 - 1.0) / 3.0);
  const float scale = static_cast<float>(static_cast<double>(std) / sd);
  const uint64_t key = mix64(stream + (row + 1) * 0x9e3779b97f4a7c15ull);
  const uint32_t k1 = static_cast<uint32_t>(key), k2 = static_cast<uint32_t>(key >> 32);
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t a = hash32(k1 + static_cast<uint32_t>(j)), b = hash32(k2 ^ static_cast<uint32_t>(j));
    const int32_t sum = static_cast<int32_t>((a & 0xffff) + (a >> 16) + (b & 0xffff) + (b >> 16));
    out[j] = static_cast<float>(sum - 131070) * scale + mean;
  }
}

status model_gen_build(const model_gen_options& o, thread_pool& pool, gguf_writer& w) {
  const model_shape& s = o.shape;
  LIME_TRY_VOID(model_shape_check(s));
  w.set_str("general.architecture", "llama");
  w.set_str("general.name", "lime-random " + s.name);
  w.set_u32("general.alignment", 32);
  w.set_u32("general.file_type", static_cast<uint32_t>(o.ftype));
  if (is_quantized_file(o.ftype)) w.set_u32("general.quantization_version", 2);
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(s.n_vocab));
  w.set_u32("llama.context_length", static_cast<uint32_t>(s.n_ctx));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32("llama.block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(s.head_dim()));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", s.rms_eps);
  w.set_f32("llama.rope.freq_base", s.rope_base);
  if (o.vocab_path.empty()) {
    LIME_TRY_VOID(model_gen_bpe_vocab(s.n_vocab, w));
  } else {
    LIME_TRY_VOID(copy_vocab(o.vocab_path, s.n_vocab, w));
  }
  const uint64_t seed = o.seed;
  thread_pool* p = &pool;
  for (const model_gen_tensor& t : model_gen_plan(s, o.ftype)) {
    std::vector<int64_t> dims = t.one_d ? std::vector<int64_t>{t.k} : std::vector<int64_t>{t.k, t.n_rows};
    LIME_TRY_VOID(w.add_tensor(t.name, t.type, dims, nullptr, [t, s, seed, p](uint8_t* dst, uint64_t n_bytes) {
      return fill_tensor(t, s, seed, *p, dst, n_bytes);
    }));
  }
  return {};
}

result<model_gen_stats> model_gen_write_file(const model_gen_options& o, const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  thread_pool pool(o.n_threads > 0 ? o.n_threads : default_thread_count());
  gguf_writer w;
  LIME_TRY_VOID(model_gen_build(o, pool, w));
  LIME_TRY_VOID(w.write_file(path));
  model_gen_stats st;
  st.n_tensors = model_gen_plan(o.shape, o.ftype).size();
  st.n_params = o.shape.n_params();
  std::error_code ec;
  st.file_bytes = std::filesystem::file_size(path, ec);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

result<std::vector<uint8_t>> model_gen_write_memory(const model_gen_options& o) {
  thread_pool pool(o.n_threads > 0 ? o.n_threads : default_thread_count());
  gguf_writer w;
  LIME_TRY_VOID(model_gen_build(o, pool, w));
  return w.write_memory();
}

}  // namespace lime
