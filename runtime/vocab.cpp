// vocab_load: reads tokenizer.ggml.* metadata into a plain vocab (defaults per model type as llama.cpp has
// them), validates array lengths and special ids, and derives the end-of-generation ids. No tokenizing here.
#include "runtime/vocab.h"

#include <algorithm>
#include <string_view>

namespace lime {
namespace {

constexpr uint64_t k_id_none_u32 = 4294967295ull;

// Texts of control tokens that end a turn or a document in the chat models we know.
constexpr std::string_view k_end_markers[] = {
    "<|eot_id|>",        "<|eom_id|>",         "<|im_end|>",         "<|end|>",
    "<|return|>",        "<|call|>",           "<end_of_turn>",      "<|endoftext|>",
    "<|end_of_text|>",   "</s>",               "<EOT>",              "_<EOT>",
    "<end_of_utterance>", "<|END_OF_TURN_TOKEN|>", "<｜end▁of▁sentence｜>",
};
// Texts that name the end-of-turn token when tokenizer.ggml.eot_token_id is absent.
constexpr std::string_view k_eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
};

template <size_t N>
bool in_list(const std::string& s, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), std::string_view(s)) != std::end(list);
}

// Reads an optional token id. Absent: *id unchanged. 4294967295 / -1: none. Other ids outside
// [0, n_tokens): bad_format.
status read_id(const gguf_file& f, const char* key, int32_t n_tokens, int32_t* id) {
  const gguf_value* v = f.find(key);
  if (!v) return {};
  if (!v->is_integer()) return make_error(errc::bad_format, std::string("vocab: ") + key + " is not an integer");
  if (v->is_signed()) {
    const auto s = static_cast<int64_t>(v->u);
    if (s == -1) { *id = -1; return {}; }
    if (s < 0 || s >= n_tokens) {
      return make_error(errc::bad_format, std::string("vocab: ") + key + " = " + std::to_string(s) +
                                              " is outside the vocabulary of " + std::to_string(n_tokens));
    }
    *id = static_cast<int32_t>(s);
    return {};
  }
  if (v->u == k_id_none_u32 || v->u == ~uint64_t(0)) { *id = -1; return {}; }
  if (v->u >= static_cast<uint64_t>(n_tokens)) {
    return make_error(errc::bad_format, std::string("vocab: ") + key + " = " + std::to_string(v->u) +
                                            " is outside the vocabulary of " + std::to_string(n_tokens));
  }
  *id = static_cast<int32_t>(v->u);
  return {};
}

status read_bool(const gguf_file& f, const char* key, bool* out) {
  const gguf_value* v = f.find(key);
  if (!v) return {};
  if (v->type != gguf_type::boolean && !v->is_integer()) {
    return make_error(errc::bad_format, std::string("vocab: ") + key + " is not a bool");
  }
  *out = v->u != 0;
  return {};
}

status read_scores(const gguf_file& f, vocab* v) {
  const gguf_value* sv = f.find("tokenizer.ggml.scores");
  if (!sv) return {};
  if (sv->type != gguf_type::array) return make_error(errc::bad_format, "vocab: tokenizer.ggml.scores is not an array");
  if (sv->elem_type == gguf_type::f32 || sv->elem_type == gguf_type::f64) {
    LIME_TRY(v->scores, f.get_array<float>("tokenizer.ggml.scores"));
  } else if (sv->elem_type == gguf_type::i32) {
    LIME_TRY(auto ints, f.get_array<int32_t>("tokenizer.ggml.scores"));
    v->scores.assign(ints.begin(), ints.end());
  } else {
    return make_error(errc::bad_format, "vocab: tokenizer.ggml.scores has elements of type " +
                                            std::string(gguf_type_name(sv->elem_type)));
  }
  if (v->scores.size() != v->tokens.size()) {
    return make_error(errc::bad_format, "vocab: " + std::to_string(v->scores.size()) + " scores for " +
                                            std::to_string(v->tokens.size()) + " tokens");
  }
  return {};
}

status read_types(const gguf_file& f, vocab* v) {
  if (!f.find("tokenizer.ggml.token_type")) return {};
  LIME_TRY(auto raw, f.get_array<int32_t>("tokenizer.ggml.token_type"));
  if (raw.size() != v->tokens.size()) {
    return make_error(errc::bad_format, "vocab: " + std::to_string(raw.size()) + " token types for " +
                                            std::to_string(v->tokens.size()) + " tokens");
  }
  v->types.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    // Unknown type values read as undefined, as llama.cpp does.
    v->types[i] = (raw[i] >= 0 && raw[i] <= 6) ? static_cast<token_attr>(raw[i]) : token_attr::undefined;
  }
  return {};
}

void set_model_defaults(vocab* v) {
  if (v->model == "llama") {
    v->kind = vocab_kind::spm;
    v->bos = 1, v->eos = 2, v->unk = 0;
    v->add_bos = true, v->add_space_prefix = true;
  } else if (v->model == "gpt2") {
    // llama.cpp defaults bos/eos to 11 here (a Falcon leftover); we leave them unset instead.
    v->kind = vocab_kind::bpe;
    v->add_space_prefix = false;
    static constexpr std::string_view bos_pres[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "tekken",
                                                    "chameleon", "pixtral", "falcon-h1"};
    v->add_bos = in_list(v->pre, bos_pres);
  } else if (v->model == "bert") {
    v->kind = vocab_kind::wpm;
    v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask = 103;
    v->add_bos = true, v->add_sep = true, v->add_space_prefix = false;
  } else {
    v->kind = vocab_kind::none;
    v->add_space_prefix = false;
  }
  // Defaults that point past a small vocabulary mean "none".
  for (int32_t* id : {&v->bos, &v->eos, &v->unk, &v->sep, &v->pad, &v->mask}) {
    if (*id >= v->n_tokens()) *id = -1;
  }
}

bool is_special_type(const vocab& v, int32_t id) {
  if (v.types.empty()) return false;
  const token_attr t = v.types[static_cast<size_t>(id)];
  return t == token_attr::control || t == token_attr::user_defined;
}

void derive_end_of_generation(vocab* v) {
  const int32_t n = v->n_tokens();
  if (v->eot < 0 || v->eom < 0) {
    for (int32_t id = 0; id < n; ++id) {
      if (!is_special_type(*v, id)) continue;
      const std::string& t = v->tokens[static_cast<size_t>(id)];
      if (v->eot < 0 && in_list(t, k_eot_names)) v->eot = id;
      if (v->eom < 0 && t == "<|eom_id|>") v->eom = id;
    }
  }
  std::vector<int32_t>& eog = v->end_of_generation_ids;
  eog.clear();
  bool has_return = false, has_call = false;
  int32_t end_id = -1;
  for (int32_t id = 0; id < n; ++id) {
    if (!is_special_type(*v, id)) continue;
    const std::string& t = v->tokens[static_cast<size_t>(id)];
    if (!in_list(t, k_end_markers)) continue;
    eog.push_back(id);
    has_return |= t == "<|return|>";
    has_call |= t == "<|call|>";
    if (t == "<|end|>") end_id = id;
  }
  // gpt-oss (harmony) ends a message with <|end|> but keeps generating; <|return|>/<|call|> end the turn.
  if (has_return && has_call && end_id >= 0) eog.erase(std::find(eog.begin(), eog.end(), end_id));
  for (int32_t id : {v->eos, v->eot, v->eom}) {
    if (id >= 0) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
}

}  // namespace

bool vocab::is_end_of_generation(int32_t id) const {
  // A handful of ids, and vocabs built in code need not keep them sorted.
  return id >= 0 && std::find(end_of_generation_ids.begin(), end_of_generation_ids.end(), id) != end_of_generation_ids.end();
}

result<vocab> vocab_load(const gguf_file& file) {
  vocab v;
  {
    auto model = file.get<std::string>("tokenizer.ggml.model");
    if (!model.ok()) {
      if (model.err().code == errc::missing) return make_error(errc::missing, "vocab: no tokenizer.ggml.model");
      return model.err();
    }
    v.model = std::move(model.value());
  }
  if (file.find("tokenizer.ggml.pre")) {
    LIME_TRY(v.pre, file.get<std::string>("tokenizer.ggml.pre"));
  }
  if (file.find("general.name")) v.name = file.get_or<std::string>("general.name", "");
  if (!file.find("tokenizer.ggml.tokens")) return make_error(errc::missing, "vocab: no tokenizer.ggml.tokens");
  LIME_TRY(v.tokens, file.get_array<std::string>("tokenizer.ggml.tokens"));
  if (v.tokens.empty()) return make_error(errc::bad_format, "vocab: tokenizer.ggml.tokens is empty");
  if (v.tokens.size() > static_cast<size_t>(INT32_MAX)) return make_error(errc::bad_format, "vocab: too many tokens");
  LIME_TRY_VOID(read_scores(file, &v));
  LIME_TRY_VOID(read_types(file, &v));

  set_model_defaults(&v);
  if (v.kind == vocab_kind::bpe) {
    if (!file.find("tokenizer.ggml.merges")) return make_error(errc::missing, "vocab: gpt2 tokenizer without tokenizer.ggml.merges");
    LIME_TRY(v.merges, file.get_array<std::string>("tokenizer.ggml.merges"));
  }

  const int32_t n = v.n_tokens();
  // bert files name [CLS] explicitly; it is what the tokenizer prepends.
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.cls_token_id", n, &v.bos));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.bos_token_id", n, &v.bos));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.eos_token_id", n, &v.eos));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.eot_token_id", n, &v.eot));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.eom_token_id", n, &v.eom));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.unknown_token_id", n, &v.unk));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.padding_token_id", n, &v.pad));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.seperator_token_id", n, &v.sep));  // sic, as GGUF spells it
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.separator_token_id", n, &v.sep));
  LIME_TRY_VOID(read_id(file, "tokenizer.ggml.mask_token_id", n, &v.mask));

  LIME_TRY_VOID(read_bool(file, "tokenizer.ggml.add_bos_token", &v.add_bos));
  LIME_TRY_VOID(read_bool(file, "tokenizer.ggml.add_eos_token", &v.add_eos));
  LIME_TRY_VOID(read_bool(file, "tokenizer.ggml.add_sep_token", &v.add_sep));
  LIME_TRY_VOID(read_bool(file, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix));
  if (v.add_bos && v.bos < 0) return make_error(errc::bad_format, "vocab: add_bos_token is set but there is no bos token");
  if (v.add_eos && v.eos < 0) return make_error(errc::bad_format, "vocab: add_eos_token is set but there is no eos token");
  if (v.add_sep && v.sep < 0) return make_error(errc::bad_format, "vocab: add_sep_token is set but there is no sep token");

  if (file.find("tokenizer.chat_template")) {
    LIME_TRY(v.chat_template, file.get<std::string>("tokenizer.chat_template"));
  }
  derive_end_of_generation(&v);
  return v;
}

}  // namespace lime
