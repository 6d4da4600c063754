// Builds small random Llama-family GGUF models in memory for tests (any weight type, GQA, tied embeddings).
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/quants.h"
#include "runtime/gguf_writer.h"
#include "runtime/model.h"

namespace lime::test {

struct tiny_spec {
  int32_t n_vocab = 96;
  int32_t n_embd = 64;
  int32_t n_layer = 3;
  int32_t n_head = 4;
  int32_t n_head_kv = 2;
  int32_t n_ff = 96;
  int32_t n_ctx = 256;
  tensor_type type = tensor_type::f32;  // type of the 2-D weights
  bool tied = false;                    // no output.weight
  uint32_t seed = 1;
  std::string arch = "llama";
};

// Owns the tensor bytes until the GGUF image is written.
class tiny_model_builder {
 public:
  explicit tiny_model_builder(const tiny_spec& s) : s_(s), rng_(s.seed) {}

  gguf_writer& writer() { return w_; }

  // Fills the writer with metadata and tensors; returns the GGUF image.
  std::vector<uint8_t> build() {
    const std::string a = s_.arch + ".";
    w_.set_str("general.architecture", s_.arch);
    w_.set_str("general.name", "tiny-test");
    w_.set_u32(a + "block_count", static_cast<uint32_t>(s_.n_layer));
    w_.set_u32(a + "embedding_length", static_cast<uint32_t>(s_.n_embd));
    w_.set_u32(a + "feed_forward_length", static_cast<uint32_t>(s_.n_ff));
    w_.set_u32(a + "attention.head_count", static_cast<uint32_t>(s_.n_head));
    w_.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(s_.n_head_kv));
    w_.set_u32(a + "context_length", static_cast<uint32_t>(s_.n_ctx));
    w_.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
    w_.set_f32(a + "rope.freq_base", 10000.0f);
    const int32_t hd = s_.n_embd / s_.n_head;
    add_matrix("token_embd.weight", s_.n_embd, s_.n_vocab, 1.0f);
    add_norm("output_norm.weight", s_.n_embd);
    if (!s_.tied) add_matrix("output.weight", s_.n_embd, s_.n_vocab, 0.5f);
    for (int32_t l = 0; l < s_.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      const float sc = 1.0f / std::sqrt(static_cast<float>(s_.n_embd));
      add_norm(p + "attn_norm.weight", s_.n_embd);
      add_matrix(p + "attn_q.weight", s_.n_embd, s_.n_head * hd, sc);
      add_matrix(p + "attn_k.weight", s_.n_embd, s_.n_head_kv * hd, sc);
      add_matrix(p + "attn_v.weight", s_.n_embd, s_.n_head_kv * hd, sc);
      add_matrix(p + "attn_output.weight", s_.n_head * hd, s_.n_embd, sc);
      add_norm(p + "ffn_norm.weight", s_.n_embd);
      add_matrix(p + "ffn_gate.weight", s_.n_embd, s_.n_ff, sc);
      add_matrix(p + "ffn_up.weight", s_.n_embd, s_.n_ff, sc);
      add_matrix(p + "ffn_down.weight", s_.n_ff, s_.n_embd, 1.0f / std::sqrt(static_cast<float>(s_.n_ff)));
    }
    auto bytes = w_.write_memory();
    return bytes.ok() ? std::move(bytes.value()) : std::vector<uint8_t>{};
  }

  // Skips a tensor (for "missing tensor" tests): call before build().
  void skip(const std::string& name) { skip_.push_back(name); }

 private:
  bool skipped(const std::string& name) const {
    for (const auto& s : skip_) if (s == name) return true;
    return false;
  }
  void add_matrix(const std::string& name, int64_t k, int64_t rows, float scale) {
    if (skipped(name)) return;
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> f(static_cast<size_t>(k * rows));
    for (float& x : f) x = nd(rng_);
    store_.emplace_back(tensor_row_bytes(s_.type, k) * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      cpu::quantize_row(s_.type, &f[static_cast<size_t>(r * k)], store_.back().data() + static_cast<size_t>(r) * tensor_row_bytes(s_.type, k), k);
    (void)w_.add_tensor(name, s_.type, {k, rows}, store_.back().data());
  }
  void add_norm(const std::string& name, int64_t n) {
    if (skipped(name)) return;
    std::uniform_real_distribution<float> ud(0.8f, 1.2f);
    std::vector<float> f(static_cast<size_t>(n));
    for (float& x : f) x = ud(rng_);
    store_.emplace_back(reinterpret_cast<uint8_t*>(f.data()), reinterpret_cast<uint8_t*>(f.data() + n));
    (void)w_.add_tensor(name, tensor_type::f32, {n}, store_.back().data());
  }

  tiny_spec s_;
  std::mt19937 rng_;
  gguf_writer w_;
  std::vector<std::vector<uint8_t>> store_;
  std::vector<std::string> skip_;
};

inline result<model> make_tiny_model(const tiny_spec& s) {
  tiny_model_builder b(s);
  std::vector<uint8_t> bytes = b.build();
  LIME_TRY(gguf_file f, gguf_file::parse(bytes.data(), bytes.size()));
  return model::from_gguf(std::move(f));
}

}  // namespace lime::test
