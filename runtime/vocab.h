// The vocabulary of a model as its GGUF describes it (tokenizer.ggml.*): tokens, scores, types, merges,
// special token ids and flags. Plain data; tokenizer.h turns it into encode/decode.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/result.h"

namespace lime {

enum class vocab_kind { none, spm, bpe, wpm };

// GGUF token types (tokenizer.ggml.token_type).
enum class token_attr : int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct vocab {
  vocab_kind kind = vocab_kind::none;
  std::string model;  // tokenizer.ggml.model: "llama", "gpt2", "bert", ...
  std::string pre;    // tokenizer.ggml.pre: "default", "llama-bpe", "deepseek-llm", ...
  std::string name;   // general.name, may be empty (a few per-model tokenizer quirks key on it, e.g. phi-3)
  std::vector<std::string> tokens;
  std::vector<float> scores;          // empty when absent
  std::vector<token_attr> types;      // empty when absent (all normal)
  std::vector<std::string> merges;    // "a b" pairs for BPE
  // Special ids; -1 = none (GGUF files may say 4294967295 for none, which maps to -1).
  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1, mask = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_sep = false;          // tokenizer.ggml.add_sep_token; bert appends [SEP] after the text
  bool add_space_prefix = true;  // SPM dummy prefix
  std::string chat_template;     // tokenizer.chat_template, may be empty

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  // True for the ids that end a generation: eos, eot, eom and any control token named like an end marker
  // ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>", ...).
  bool is_end_of_generation(int32_t id) const;
  std::vector<int32_t> end_of_generation_ids;  // filled by vocab_load
};

// Reads tokenizer.* metadata. Errors: missing (no tokenizer.ggml.model or tokens), bad_format (array lengths
// disagree, a special id out of range other than the "none" value).
result<vocab> vocab_load(const gguf_file& file);

}  // namespace lime
