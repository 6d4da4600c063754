// BPE pre-tokenizer: splits text into words with the PCRE2 regexes that tokenizer.ggml.pre names (gpt-2,
// llama3, qwen2, deepseek-*, falcon, starcoder, ...). Each regex in a list splits every piece left by the
// previous one; matches and the text between matches both become pieces. Does no byte encoding.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.h"

namespace lime {

class pretokenizer {
 public:
  // Errors: unsupported (unknown name), internal (a regex failed to compile: a bug).
  static result<pretokenizer> create(std::string_view pre);
  pretokenizer(pretokenizer&&) noexcept;
  pretokenizer& operator=(pretokenizer&&) noexcept;
  ~pretokenizer();

  // Pieces of `text` (views into it), in order; their concatenation is `text`. text must be valid UTF-8
  // (see utf8_sanitize). Safe to call from several threads at once.
  std::vector<std::string_view> split(std::string_view text) const;

  // llama3-style vocabularies look a whole word up before merging (tokenizer "ignore_merges").
  bool ignore_merges() const;
  const std::string& name() const;

 private:
  pretokenizer();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace lime
