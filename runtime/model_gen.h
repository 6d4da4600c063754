// Random-weight Llama GGUF files at real models' shapes, for benchmarks and tests: the shapes table, llama.cpp's
// per-tensor type rule for each file type, a counter-based weight RNG and the streaming writer (rows generated
// and quantized in parallel). Never loads or runs a model; the files it writes are plain GGUF v3.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"
#include "runtime/gguf_writer.h"
#include "runtime/result.h"
#include "runtime/thread_pool.h"

namespace lime {

// Hyperparameters of a Llama-architecture model (the published ones for the named shapes).
struct model_shape {
  std::string name;         // "llama-3.2-1b", ..., or "custom"
  int32_t n_vocab = 0;
  int32_t n_ctx = 0;        // training context (llama.context_length)
  int32_t n_embd = 0;
  int32_t n_ff = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;    // grouped-query attention: n_head % n_head_kv == 0
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied = false;        // no output.weight: the head reuses token_embd (Llama-3.2 1B/3B)
  // Llama-3.1-style rope scaling, stored as the rope_freqs tensor of per-pair divisors (llama.cpp's convention).
  float rope_scale = 0.0f;  // 0: none
  float rope_low_freq = 1.0f;
  float rope_high_freq = 4.0f;
  int32_t rope_orig_ctx = 8192;

  int32_t head_dim() const { return n_head > 0 ? n_embd / n_head : 0; }
  int32_t n_embd_kv() const { return n_head_kv * head_dim(); }
  uint64_t n_params() const;  // elements of all tensors the file holds
};

// stories110M, tinyllama-1.1b, llama-3.2-1b, llama-2-7b, llama-3-8b, llama-3.3-70b.
const std::vector<model_shape>& model_shapes();
// Errors: invalid_argument naming the known shapes.
result<model_shape> model_shape_find(const std::string& name);
// Positive dims, n_embd % n_head == 0, even head_dim, n_head % n_head_kv == 0. Errors: invalid_argument.
status model_shape_check(const model_shape& s);

// A whole-file type, numbered as llama.cpp's llama_ftype (written as general.file_type).
enum class model_ftype : uint32_t {
  all_f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 7, q5_0 = 8, q5_1 = 9, q4_k_m = 15, q5_k_m = 17, q6_k = 18,
  bf16 = 32,
};
// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q5_k_m", "q6_k" (any case).
// Errors: invalid_argument naming the known types.
result<model_ftype> model_ftype_from_name(const std::string& name);
const char* model_ftype_name(model_ftype f);        // "q4_k_m"
const char* model_ftype_llama_name(model_ftype f);  // as llama.cpp prints it: "Q4_K - Medium", "all F32"
tensor_type model_ftype_base(model_ftype f);        // the type of most 2-D weights

// The type llama.cpp's quantizer (src/llama-quant.cpp, llama_tensor_get_type; no imatrix, no overrides) gives
// tensor `name` ("output.weight", "blk.3.attn_v.weight", ...; layer parsed from the name) in a file of type f:
//  - 1-D tensors (norms, rope_freqs) are f32;
//  - the output head (output.weight, or token_embd.weight when tied) is q6_k in every quantized file but q8_0;
//  - q4_k_m / q5_k_m: attn_v and ffn_down are q6_k in the "use more bits" layers
//    (i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2); with 80 layers (llama.cpp's 70B) the other attn_v are q5_k;
//  - a K-quant whose row length is not a multiple of 256 falls back (q4_k -> q5_0, q5_k -> q5_1,
//    q6_k -> q8_0; f16 if that does not divide either).
tensor_type model_gen_tensor_type(const model_shape& s, model_ftype f, const std::string& name);

// One tensor of the file, in file order.
struct model_gen_tensor {
  std::string name;
  tensor_type type = tensor_type::f32;
  int64_t k = 0;       // ne[0]
  int64_t n_rows = 1;  // ne[1]; 1 with one_d
  bool one_d = false;  // norms and rope_freqs
};
std::vector<model_gen_tensor> model_gen_plan(const model_shape& s, model_ftype f);

// Weight values: element (row, j) of a tensor is a pure function of (seed, tensor name, row, j), so tensors and
// rows can be generated in any order and on any number of threads. Matrices: approximately normal (an Irwin-Hall
// sum of four 16-bit uniforms, so |x| <= 3.47 std) with std model_gen_std; norms: 1 + 0.1 * the same;
// rope_freqs: Llama-3 scaling factors. The same seed gives the same values whatever the file type.
constexpr float model_gen_std = 0.02f;
uint64_t model_gen_stream(uint64_t seed, const std::string& tensor_name);
// out[j] = std * z(stream, row, j) + mean for j < n (n < 2^32); z has mean 0 and variance 1.
void model_gen_values(uint64_t stream, uint64_t row, int64_t n, float std, float mean, float* out);

struct model_gen_options {
  model_shape shape;
  model_ftype ftype = model_ftype::q4_0;
  uint64_t seed = 1;
  // tokenizer.* keys are copied from this GGUF (its token count must equal n_vocab). Empty: a generated
  // byte-level BPE vocabulary of n_vocab tokens (model_gen_bpe_vocab).
  std::string vocab_path;
  int n_threads = 0;  // 0: all online CPUs
};

// Adds the metadata and tensors to `w`; the tensors stream in from fill callbacks run on `pool`, which must
// outlive w.write_*(). Errors: invalid_argument (bad shape, vocab size mismatch), io_error/bad_format (vocab).
status model_gen_build(const model_gen_options& o, thread_pool& pool, gguf_writer& w);

struct model_gen_stats {
  uint64_t n_tensors = 0;
  uint64_t n_params = 0;
  uint64_t file_bytes = 0;
  double seconds = 0.0;
};
result<model_gen_stats> model_gen_write_file(const model_gen_options& o, const std::string& path);
result<std::vector<uint8_t>> model_gen_write_memory(const model_gen_options& o);  // small models (tests)

// Writes tokenizer.* keys for a byte-level BPE vocabulary of n_vocab tokens (tokenizer.ggml.model "gpt2",
// pre "llama-bpe"): the 256 byte symbols of GPT-2's byte-to-unicode map, normal tokens made by merges (pairs of
// symbols, then pair + symbol), and special control tokens at the end, named like Llama-3's
// (<|begin_of_text|> = BOS, <|end_of_text|>, <|eot_id|> = EOS, <|reserved_special_token_N|>): 256 of them when
// n_vocab >= 128256 (so 128256 gives Llama-3's layout), else min(256, (n_vocab - 256) / 2).
// Errors: invalid_argument when n_vocab < 260 or n_vocab - specials exceeds 256 + 256^2 + 256^3.
status model_gen_bpe_vocab(int32_t n_vocab, gguf_writer& w);

// Fast quantizers for generated rows of the K-quant types (q4_k, q5_k, q6_k): plain min/max sub-block scales, no
// search (the reference quantize_row searches scales and is ~100x slower). The blocks are valid and dequantize
// (kernels/cpu/quants.h) to within one quantization step of src. n: a multiple of 256. Other types: false.
bool model_gen_quantize_fast(tensor_type t, const float* src, void* dst, int64_t n);

}  // namespace lime
