// Tokenizers: SentencePiece-style (scores, byte fallback, dummy prefix), byte-level BPE with the
// pre-tokenizer regexes named by tokenizer.ggml.pre, WordPiece (bert). Encode, decode, and a streaming
// detokenizer that never emits half a UTF-8 character.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.h"
#include "runtime/vocab.h"

namespace lime {

class tokenizer {
 public:
  // Errors: unsupported (unknown model or pre-tokenizer name), bad_format (inconsistent vocab).
  static result<tokenizer> create(vocab v);
  tokenizer(tokenizer&&) noexcept;
  tokenizer& operator=(tokenizer&&) noexcept;
  ~tokenizer();

  const vocab& get_vocab() const;

  // add_special: BOS/EOS as the vocab's add_bos/add_eos say. parse_special: text like "<|im_start|>" that
  // spells a control/user-defined token becomes that token (otherwise it is tokenized as plain text).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token stands for (byte tokens "<0x0A>" -> "\n"; SPM "▁" -> " "; BPE byte-level -> raw bytes).
  // Control tokens give "" unless `special` is true (then their text).
  std::string token_to_piece(int32_t id, bool special) const;
  // Concatenation of pieces; with remove_space_prefix, a leading space from the SPM dummy prefix is dropped.
  std::string decode(const std::vector<int32_t>& ids, bool special, bool remove_space_prefix) const;

 private:
  tokenizer();
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Streams text token by token: push() returns the UTF-8-complete text that became available; incomplete
// trailing bytes are held back until the next token (flush() returns whatever is left at the end).
class detokenizer_stream {
 public:
  detokenizer_stream(const tokenizer& tok, bool special, bool remove_space_prefix);
  std::string push(int32_t id);
  std::string flush();

 private:
  const tokenizer* tok_;
  bool special_;
  bool strip_prefix_;  // still to drop the first leading space
  std::string pending_;
};

}  // namespace lime
