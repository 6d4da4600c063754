// Model generator, the descriptive half: the shapes table, file types, llama.cpp's per-tensor type rule and the
// tensor plan. Metadata and tensor bytes are written in model_gen_fill.cpp.
#include "runtime/model_gen.h"

#include <algorithm>
#include <cctype>
#include <cstdio>


namespace lime {
namespace {

model_shape make_shape(const char* name, int32_t n_vocab, int32_t n_ctx, int32_t n_embd, int32_t n_ff, int32_t n_layer,
                       int32_t n_head, int32_t n_head_kv, float rope_base, bool tied, float rope_scale) {
  model_shape s;
  s.name = name;
  s.n_vocab = n_vocab;
  s.n_ctx = n_ctx;
  s.n_embd = n_embd;
  s.n_ff = n_ff;
  s.n_layer = n_layer;
  s.n_head = n_head;
  s.n_head_kv = n_head_kv;
  s.rope_base = rope_base;
  s.tied = tied;
  s.rope_scale = rope_scale;
  return s;
}

struct ftype_entry {
  model_ftype f;
  const char* name;
  const char* llama_name;
  tensor_type base;
};

const ftype_entry k_ftypes[] = {
    {model_ftype::all_f32, "f32", "all F32", tensor_type::f32},
    {model_ftype::f16, "f16", "F16", tensor_type::f16},
    {model_ftype::bf16, "bf16", "BF16", tensor_type::bf16},
    {model_ftype::q8_0, "q8_0", "Q8_0", tensor_type::q8_0},
    {model_ftype::q4_0, "q4_0", "Q4_0", tensor_type::q4_0},
    {model_ftype::q4_1, "q4_1", "Q4_1", tensor_type::q4_1},
    {model_ftype::q5_0, "q5_0", "Q5_0", tensor_type::q5_0},
    {model_ftype::q5_1, "q5_1", "Q5_1", tensor_type::q5_1},
    {model_ftype::q4_k_m, "q4_k_m", "Q4_K - Medium", tensor_type::q4_k},
    {model_ftype::q5_k_m, "q5_k_m", "Q5_K - Medium", tensor_type::q5_k},
    {model_ftype::q6_k, "q6_k", "Q6_K", tensor_type::q6_k},
};

const ftype_entry& ftype_info(model_ftype f) {
  for (const ftype_entry& e : k_ftypes)
    if (e.f == f) return e;
  return k_ftypes[0];
}

bool is_quantized(model_ftype f) {
  return f != model_ftype::all_f32 && f != model_ftype::f16 && f != model_ftype::bf16;
}

// llama.cpp's "use more bits" layer pattern for Q4_K_M/Q5_K_M attn_v and ffn_down.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// Replaces a type the row length cannot hold (K-quants need ne[0] % 256 == 0) as llama.cpp does.
tensor_type fit_row(tensor_type t, int64_t k) {
  if (k % tensor_type_traits(t).block_elems == 0) return t;
  tensor_type f = tensor_type::f16;
  if (t == tensor_type::q4_k) f = tensor_type::q5_0;
  if (t == tensor_type::q5_k) f = tensor_type::q5_1;
  if (t == tensor_type::q6_k) f = tensor_type::q8_0;
  return k % tensor_type_traits(f).block_elems == 0 ? f : tensor_type::f16;
}

int32_t layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool has(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

}  // namespace

uint64_t model_shape::n_params() const {
  const uint64_t e = static_cast<uint64_t>(n_embd), kv = static_cast<uint64_t>(n_embd_kv());
  uint64_t n = static_cast<uint64_t>(n_vocab) * e * (tied ? 1 : 2) + e;
  if (rope_scale > 0.f) n += static_cast<uint64_t>(head_dim() / 2);
  const uint64_t per_layer = 2 * e + 2 * e * e + 2 * e * kv + 3 * e * static_cast<uint64_t>(n_ff);
  return n + per_layer * static_cast<uint64_t>(n_layer);
}

const std::vector<model_shape>& model_shapes() {
  // Published configurations (config.json / llama2.c); rms_eps is 1e-5 for all of them.
  static const std::vector<model_shape> shapes = {
      make_shape("stories110M", 32000, 1024, 768, 2048, 12, 12, 12, 10000.f, false, 0.f),
      make_shape("tinyllama-1.1b", 32000, 2048, 2048, 5632, 22, 32, 4, 10000.f, false, 0.f),
      make_shape("llama-3.2-1b", 128256, 131072, 2048, 8192, 16, 32, 8, 500000.f, true, 32.f),
      make_shape("llama-2-7b", 32000, 4096, 4096, 11008, 32, 32, 32, 10000.f, false, 0.f),
      make_shape("llama-3-8b", 128256, 8192, 4096, 14336, 32, 32, 8, 500000.f, false, 0.f),
      make_shape("llama-3.3-70b", 128256, 131072, 8192, 28672, 80, 64, 8, 500000.f, false, 8.f),
  };
  return shapes;
}

result<model_shape> model_shape_find(const std::string& name) {
  std::string known;
  for (const model_shape& s : model_shapes()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  return make_error(errc::invalid_argument, "unknown shape '" + name + "' (known: " + known + ")");
}

status model_shape_check(const model_shape& s) {
  auto bad = [&](const std::string& why) { return make_error(errc::invalid_argument, "shape " + s.name + ": " + why); };
  if (s.n_vocab < 1 || s.n_ctx < 1 || s.n_embd < 1 || s.n_ff < 1 || s.n_layer < 1 || s.n_head < 1 || s.n_head_kv < 1)
    return bad("every dimension must be positive");
  if (s.n_embd % s.n_head != 0) return bad("n_embd is not a multiple of n_head");
  if (s.head_dim() % 2 != 0) return bad("head_dim (n_embd / n_head) must be even");
  if (s.n_head % s.n_head_kv != 0) return bad("n_head is not a multiple of n_head_kv");
  if (s.n_embd % 32 != 0 || s.n_ff % 32 != 0) return bad("n_embd and n_ff must be multiples of 32 (the block size)");
  if (!(s.rope_base > 1.f)) return bad("rope base must be > 1");
  if (s.rope_scale < 0.f || (s.rope_scale > 0.f && !(s.rope_high_freq > s.rope_low_freq)))
    return bad("bad rope scaling parameters");
  return {};
}

result<model_ftype> model_ftype_from_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string known;
  for (const ftype_entry& e : k_ftypes) {
    if (lower == e.name) return e.f;
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  return make_error(errc::invalid_argument, "unknown type '" + name + "' (known: " + known + ")");
}

const char* model_ftype_name(model_ftype f) { return ftype_info(f).name; }
const char* model_ftype_llama_name(model_ftype f) { return ftype_info(f).llama_name; }
tensor_type model_ftype_base(model_ftype f) { return ftype_info(f).base; }

tensor_type model_gen_tensor_type(const model_shape& s, model_ftype f, const std::string& name) {
  if (has(name, "_norm.weight") || name == "rope_freqs.weight") return tensor_type::f32;
  const tensor_type base = model_ftype_base(f);
  const int64_t k = (has(name, "ffn_down") ? s.n_ff : s.n_embd);  // every other matrix reads n_embd inputs
  if (!is_quantized(f)) return base;
  const bool head = name == "output.weight" || (s.tied && name == "token_embd.weight");
  tensor_type t = base;
  if (head) {
    t = base == tensor_type::q8_0 ? tensor_type::q8_0 : tensor_type::q6_k;
  } else if (f == model_ftype::q4_k_m || f == model_ftype::q5_k_m) {
    const int32_t layer = layer_of(name);
    if (has(name, "attn_v.weight")) {
      if (use_more_bits(layer, s.n_layer)) t = tensor_type::q6_k;
      // llama.cpp's 70B (80 layers with grouped-query attention): attn_v is 8x smaller than attn_q, so more bits.
      else if (s.n_layer == 80 && s.n_head != s.n_head_kv && t == tensor_type::q4_k) t = tensor_type::q5_k;
    } else if (has(name, "ffn_down") && use_more_bits(layer, s.n_layer)) {
      t = tensor_type::q6_k;
    }
  }
  return fit_row(t, k);
}

std::vector<model_gen_tensor> model_gen_plan(const model_shape& s, model_ftype f) {
  std::vector<model_gen_tensor> plan;
  auto add = [&](const std::string& name, int64_t k, int64_t n_rows, bool one_d) {
    plan.push_back(model_gen_tensor{name, model_gen_tensor_type(s, f, name), k, n_rows, one_d});
  };
  const int64_t e = s.n_embd, kv = s.n_embd_kv(), ff = s.n_ff;
  add("token_embd.weight", e, s.n_vocab, false);
  if (s.rope_scale > 0.f) add("rope_freqs.weight", s.head_dim() / 2, 1, true);
  for (int32_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", e, 1, true);
    add(p + "attn_q.weight", e, e, false);
    add(p + "attn_k.weight", e, kv, false);
    add(p + "attn_v.weight", e, kv, false);
    add(p + "attn_output.weight", e, e, false);
    add(p + "ffn_norm.weight", e, 1, true);
    add(p + "ffn_gate.weight", e, ff, false);
    add(p + "ffn_up.weight", e, ff, false);
    add(p + "ffn_down.weight", ff, e, false);
  }
  add("output_norm.weight", e, 1, true);
  if (!s.tied) add("output.weight", e, s.n_vocab, false);
  return plan;
}

}  // namespace lime
