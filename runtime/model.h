// A Llama-family model loaded from GGUF: hyperparameters, per-layer weight views into the mapped file, and the
// rope frequency table. Owns the gguf_file; never copies weights.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"
#include "runtime/gguf.h"
#include "runtime/result.h"

namespace lime {

struct model_hparams {
  std::string arch;          // general.architecture ("llama", ...)
  std::string name;          // general.name, may be empty
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;   // {arch}.context_length
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;     // grouped-query attention: n_head % n_head_kv == 0
  int32_t n_ff = 0;
  int32_t head_dim = 0;      // {arch}.attention.key_length, default n_embd / n_head
  int32_t n_rot = 0;         // {arch}.rope.dimension_count, default head_dim
  float rms_eps = 1e-5f;
  double rope_base = 10000.0;
  double rope_freq_scale = 1.0;  // 1 / linear scaling factor
  bool rope_neox = false;        // llama uses interleaved (normal) rope
  bool has_rope_factors = false; // Llama-3.1+ rope_freqs tensor present

  int32_t n_embd_q() const { return n_head * head_dim; }
  int32_t n_embd_kv() const { return n_head_kv * head_dim; }
};

// A 2-D weight: rows of `k` elements; n_rows outputs. data points into the mapped file.
struct weight_view {
  tensor_type type = tensor_type::f32;
  const void* data = nullptr;
  int64_t k = 0;       // ne[0]: input features (contiguous)
  int64_t n_rows = 0;  // ne[1]: output features
  uint64_t n_bytes = 0;
};

struct layer_weights {
  weight_view attn_norm;  // [n_embd] f32
  weight_view wq, wk, wv, wo;
  weight_view ffn_norm;   // [n_embd] f32
  weight_view w_gate, w_up, w_down;
};

class model {
 public:
  // Opens, validates and maps a GGUF. Errors: io_error, bad_format (incl. wrong shapes), unsupported
  // (architecture, tensor type, rope scaling), missing (required key or tensor).
  static result<model> load(const std::string& path);
  static result<model> from_gguf(gguf_file file);

  const model_hparams& hparams() const { return hp_; }
  const gguf_file& file() const { return *file_; }
  const weight_view& tok_embd() const { return tok_embd_; }
  const weight_view& output_norm() const { return output_norm_; }
  const weight_view& output() const { return output_; }  // token_embd when tied
  bool tied_embeddings() const { return tied_; }
  const layer_weights& layer(int32_t i) const { return layers_[static_cast<size_t>(i)]; }
  const std::vector<double>& rope_inv_freq() const { return rope_inv_freq_; }  // [n_rot / 2]
  uint64_t weight_bytes() const;  // bytes of all tensors the forward pass reads
  std::string describe() const;   // one line: arch, layers, dims, types

 private:
  std::unique_ptr<gguf_file> file_;
  model_hparams hp_;
  weight_view tok_embd_, output_norm_, output_;
  bool tied_ = false;
  std::vector<layer_weights> layers_;
  std::vector<double> rope_inv_freq_;
};

}  // namespace lime
