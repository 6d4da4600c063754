// Internal to the tokenizer files (tokenizer*.cpp): lookup tables built once from a vocab, and the three
// algorithms (SPM, BPE, WordPiece) that turn one plain-text fragment into ids. Not a public interface.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/pretokenizer.h"
#include "runtime/vocab.h"

namespace lime {

struct tok_tables {
  const vocab* v = nullptr;                                 // owned by tokenizer::impl
  std::unordered_map<std::string, int32_t> token_to_id;     // text -> id (empty texts are not listed)
  std::unordered_map<std::string, int32_t> merge_rank;      // "left right" -> rank (BPE; lower merges first)
  std::array<int32_t, 256> byte_token{};                    // SPM: id of "<0xXX>", -1 when absent
  size_t max_token_len = 0;                                 // bytes

  int32_t find(std::string_view text) const {
    auto it = token_to_id.find(std::string(text));
    return it == token_to_id.end() ? -1 : it->second;
  }
  token_attr type(int32_t id) const {
    return v->types.empty() ? token_attr::normal : v->types[static_cast<size_t>(id)];
  }
  float score(int32_t id) const { return v->scores.empty() ? 0.0f : v->scores[static_cast<size_t>(id)]; }
};

// SentencePiece BPE over `text` in which spaces are already U+2581 (and the dummy prefix added): merges the
// pair whose merged text is the highest-scoring token first; pieces that are no token fall back to byte
// tokens (<0xXX>), then to unk.
void spm_tokenize(const tok_tables& t, std::string_view text, std::vector<int32_t>* out);

// Byte-level BPE: pre-tokenizes `text` (valid UTF-8), maps each word's bytes with the GPT-2 byte-to-unicode
// table and merges by rank.
void bpe_tokenize(const tok_tables& t, const pretokenizer& pre, std::string_view text, std::vector<int32_t>* out);
// GPT-2 byte <-> unicode table: every byte maps to one printable code point (UTF-8 encoded).
std::string bpe_bytes_to_unicode(std::string_view raw);
// Inverse; code points outside the table are passed through as their UTF-8 bytes.
std::string bpe_unicode_to_bytes(std::string_view encoded);

// WordPiece (bert): clean, strip accents, lowercase, split on whitespace/punctuation/CJK, then greedy
// longest match per word with the vocabulary's "▁" word-start marker; a word that cannot be covered is unk.
void wpm_tokenize(const tok_tables& t, std::string_view text, std::vector<int32_t>* out);

}  // namespace lime
