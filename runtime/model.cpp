// Loads a Llama-family GGUF: reads and checks hyperparameters, binds every weight with its expected shape,
// computes the rope frequency table.
#include "runtime/model.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "kernels/cpu/rope.h"

namespace lime {
namespace {

// Architectures whose GGUF uses the Llama graph and key layout ({arch}.block_count, blk.N.attn_q, ...).
bool arch_is_llama_shaped(const std::string& arch) { return arch == "llama" || arch == "mistral"; }

std::string dims_string(const gguf_tensor_info& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

result<int32_t> get_dim(const gguf_file& f, const std::string& key) {
  LIME_TRY(uint32_t v, f.get<uint32_t>(key));
  if (v == 0 || v > (1u << 24)) return make_error(errc::bad_format, "model: " + key + " = " + std::to_string(v) + " is out of range");
  return static_cast<int32_t>(v);
}

// Binds tensor `name` and checks its shape is [k, n_rows] (n_rows = 1 and 1-D for vectors).
result<weight_view> bind(const gguf_file& f, const std::string& name, int64_t k, int64_t n_rows, bool vector_f32) {
  const gguf_tensor_info* t = f.find_tensor(name);
  if (!t) return make_error(errc::missing, "model: tensor '" + name + "' is missing");
  bool shape_ok = vector_f32 ? (t->n_dims == 1 && t->ne[0] == k)
                             : (t->n_dims == 2 && t->ne[0] == k && t->ne[1] == n_rows);
  if (!shape_ok) {
    std::string want = vector_f32 ? "[" + std::to_string(k) + "]"
                                  : "[" + std::to_string(k) + ", " + std::to_string(n_rows) + "]";
    return make_error(errc::bad_format, "model: tensor '" + name + "' has shape " + dims_string(*t) + ", expected " + want);
  }
  const tensor_type_info& info = tensor_type_traits(t->type);
  if (vector_f32 && t->type != tensor_type::f32)
    return make_error(errc::unsupported, "model: tensor '" + name + "' is " + info.name + ", expected f32");
  if (!info.computable)
    return make_error(errc::unsupported, std::string("model: tensor '") + name + "' has type " + info.name + ", which lime cannot compute yet");
  weight_view w;
  w.type = t->type;
  w.data = f.tensor_data(*t);
  w.k = t->ne[0];
  w.n_rows = vector_f32 ? 1 : t->ne[1];
  w.n_bytes = t->n_bytes;
  return w;
}

result<model_hparams> read_hparams(const gguf_file& f) {
  model_hparams hp;
  LIME_TRY(hp.arch, f.get<std::string>("general.architecture"));
  if (!arch_is_llama_shaped(hp.arch))
    return make_error(errc::unsupported, "model: architecture '" + hp.arch + "' is not supported (lime runs Llama-family models)");
  hp.name = f.get_or<std::string>("general.name", "");
  const std::string a = hp.arch + ".";
  LIME_TRY(hp.n_layer, get_dim(f, a + "block_count"));
  LIME_TRY(hp.n_embd, get_dim(f, a + "embedding_length"));
  LIME_TRY(hp.n_ff, get_dim(f, a + "feed_forward_length"));
  LIME_TRY(hp.n_head, get_dim(f, a + "attention.head_count"));
  hp.n_head_kv = hp.n_head;
  if (f.find(a + "attention.head_count_kv")) {
    LIME_TRY(hp.n_head_kv, get_dim(f, a + "attention.head_count_kv"));
  }
  hp.n_ctx_train = static_cast<int32_t>(f.get_or<uint32_t>(a + "context_length", 2048));
  if (hp.n_ctx_train <= 0) hp.n_ctx_train = 2048;
  if (hp.n_embd % hp.n_head != 0 && !f.find(a + "attention.key_length"))
    return make_error(errc::bad_format, "model: embedding_length is not a multiple of head_count");
  hp.head_dim = static_cast<int32_t>(f.get_or<uint32_t>(a + "attention.key_length", static_cast<uint32_t>(hp.n_embd / hp.n_head)));
  int32_t v_dim = static_cast<int32_t>(f.get_or<uint32_t>(a + "attention.value_length", static_cast<uint32_t>(hp.head_dim)));
  if (v_dim != hp.head_dim) return make_error(errc::unsupported, "model: key_length != value_length is not supported");
  hp.n_rot = static_cast<int32_t>(f.get_or<uint32_t>(a + "rope.dimension_count", static_cast<uint32_t>(hp.head_dim)));
  if (hp.head_dim <= 0 || hp.head_dim % 2 != 0 || hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
    return make_error(errc::bad_format, "model: bad head/rope dimensions (head_dim " + std::to_string(hp.head_dim) + ", n_rot " + std::to_string(hp.n_rot) + ")");
  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
    return make_error(errc::bad_format, "model: head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " + std::to_string(hp.n_head_kv));
  hp.rms_eps = f.get_or<float>(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  if (!(hp.rms_eps > 0.f) || !std::isfinite(hp.rms_eps)) return make_error(errc::bad_format, "model: rms epsilon must be positive");
  hp.rope_base = f.get_or<float>(a + "rope.freq_base", 10000.0f);
  if (!(hp.rope_base > 1.0) || !std::isfinite(hp.rope_base)) return make_error(errc::bad_format, "model: rope.freq_base must be > 1");
  std::string scaling = f.get_or<std::string>(a + "rope.scaling.type", "none");
  float factor = f.get_or<float>(a + "rope.scaling.factor", 0.0f);
  if (scaling == "linear" && factor > 0.f) {
    hp.rope_freq_scale = 1.0 / factor;
  } else if (scaling != "none" && scaling != "linear") {
    return make_error(errc::unsupported, "model: rope scaling '" + scaling + "' is not supported (none, linear, llama3 rope_freqs are)");
  }
  return hp;
}

}  // namespace

result<model> model::load(const std::string& path) {
  LIME_TRY(gguf_file f, gguf_file::open(path));
  return from_gguf(std::move(f));
}

result<model> model::from_gguf(gguf_file file) {
  model m;
  m.file_ = std::make_unique<gguf_file>(std::move(file));
  const gguf_file& f = *m.file_;
  LIME_TRY(m.hp_, read_hparams(f));
  model_hparams& hp = m.hp_;

  const gguf_tensor_info* embd = f.find_tensor("token_embd.weight");
  if (!embd) return make_error(errc::missing, "model: tensor 'token_embd.weight' is missing");
  if (embd->n_dims != 2 || embd->ne[0] != hp.n_embd)
    return make_error(errc::bad_format, "model: token_embd.weight has shape " + dims_string(*embd) + ", expected [" + std::to_string(hp.n_embd) + ", n_vocab]");
  hp.n_vocab = static_cast<int32_t>(embd->ne[1]);
  LIME_TRY(m.tok_embd_, bind(f, "token_embd.weight", hp.n_embd, hp.n_vocab, false));
  LIME_TRY(m.output_norm_, bind(f, "output_norm.weight", hp.n_embd, 1, true));
  if (f.find_tensor("output.weight")) {
    LIME_TRY(m.output_, bind(f, "output.weight", hp.n_embd, hp.n_vocab, false));
  } else {
    m.output_ = m.tok_embd_;
    m.tied_ = true;
  }
  m.layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int32_t i = 0; i < hp.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    layer_weights& l = m.layers_[static_cast<size_t>(i)];
    LIME_TRY(l.attn_norm, bind(f, p + "attn_norm.weight", hp.n_embd, 1, true));
    LIME_TRY(l.wq, bind(f, p + "attn_q.weight", hp.n_embd, hp.n_embd_q(), false));
    LIME_TRY(l.wk, bind(f, p + "attn_k.weight", hp.n_embd, hp.n_embd_kv(), false));
    LIME_TRY(l.wv, bind(f, p + "attn_v.weight", hp.n_embd, hp.n_embd_kv(), false));
    LIME_TRY(l.wo, bind(f, p + "attn_output.weight", hp.n_embd_q(), hp.n_embd, false));
    LIME_TRY(l.ffn_norm, bind(f, p + "ffn_norm.weight", hp.n_embd, 1, true));
    LIME_TRY(l.w_gate, bind(f, p + "ffn_gate.weight", hp.n_embd, hp.n_ff, false));
    LIME_TRY(l.w_up, bind(f, p + "ffn_up.weight", hp.n_embd, hp.n_ff, false));
    LIME_TRY(l.w_down, bind(f, p + "ffn_down.weight", hp.n_ff, hp.n_embd, false));
  }

  const float* factors = nullptr;
  if (f.find_tensor("rope_freqs.weight")) {
    LIME_TRY(weight_view rf, bind(f, "rope_freqs.weight", hp.n_rot / 2, 1, true));
    factors = static_cast<const float*>(rf.data);
    for (int32_t i = 0; i < hp.n_rot / 2; ++i) {
      if (!(factors[i] > 0.f) || !std::isfinite(factors[i])) return make_error(errc::bad_format, "model: rope_freqs.weight holds a non-positive factor");
    }
    hp.has_rope_factors = true;
  }
  m.rope_inv_freq_.resize(static_cast<size_t>(hp.n_rot / 2));
  cpu::rope_inv_freq(m.rope_inv_freq_.data(), hp.n_rot, hp.rope_base, hp.rope_freq_scale, factors);
  return m;
}

uint64_t model::weight_bytes() const {
  uint64_t n = tok_embd_.n_bytes + output_norm_.n_bytes + (tied_ ? 0 : output_.n_bytes);
  for (const layer_weights& l : layers_) {
    for (const weight_view* w : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      n += w->n_bytes;
  }
  return n;
}

std::string model::describe() const {
  char buf[320];
  std::snprintf(buf, sizeof(buf), "%s%s%s: %d layers, n_embd %d, n_ff %d, heads %d/%d (kv), head_dim %d, vocab %d, ctx %d, %s weights, %.1f MiB",
                hp_.arch.c_str(), hp_.name.empty() ? "" : " ", hp_.name.c_str(), hp_.n_layer, hp_.n_embd, hp_.n_ff,
                hp_.n_head, hp_.n_head_kv, hp_.head_dim, hp_.n_vocab, hp_.n_ctx_train,
                hp_.n_layer > 0 ? tensor_type_name(layers_[0].wq.type) : "?", static_cast<double>(weight_bytes()) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace lime
