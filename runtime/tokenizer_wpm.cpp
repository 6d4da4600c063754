// WordPiece (bert) tokenization of one text fragment: BERT's normaliser (drop controls, NFD + drop
// nonspacing marks, lowercase), its pre-tokenizer (whitespace, punctuation and CJK characters split words),
// then greedy longest-match pieces. GGUF bert vocabularies mark word starts with "▁" instead of "##" on
// continuations. Unicode properties come from ICU.
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>

#include "runtime/tokenizer_impl.h"
#include "runtime/utf8.h"

namespace lime {
namespace {

constexpr size_t k_max_word_chars = 100;  // longer words become unk, as in BERT's WordPiece
constexpr std::string_view k_word_start = "\xE2\x96\x81";  // U+2581

bool is_whitespace(uint32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_isUWhiteSpace(static_cast<UChar32>(c));
}

// BERT's "control": any C* category except the tab/newline/return it treats as whitespace.
bool is_control(uint32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_PRIVATE_USE_CHAR: case U_SURROGATE: case U_UNASSIGNED:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(uint32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return u_ispunct(static_cast<UChar32>(c));
}

// The CJK blocks BERT isolates (as HF's tokenizers lists them, including its 0x2B920 lower bound).
bool is_cjk(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Appends the full lowercase mapping of c (ICU root locale) as code points.
void append_lower(uint32_t c, std::vector<uint32_t>* out) {
  if (c < 0x80) {
    out->push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
    return;
  }
  UChar src[2], dst[8];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 8, src, src_len, "", &err);
  if (U_FAILURE(err) || n > 8) {
    out->push_back(static_cast<uint32_t>(u_tolower(static_cast<UChar32>(c))));
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 d;
    U16_NEXT_UNSAFE(dst, i, d);
    out->push_back(static_cast<uint32_t>(d));
  }
}

// Canonical decomposition of c without nonspacing marks, lowercased.
void append_normalized(uint32_t c, std::vector<uint32_t>* out) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&err);
  UChar buf[32];
  int32_t n = U_SUCCESS(err) ? unorm2_getDecomposition(nfd, static_cast<UChar32>(c), buf, 32, &err) : -1;
  if (U_FAILURE(err) || n < 0 || n > 32) {  // no decomposition
    if (u_charType(static_cast<UChar32>(c)) != U_NON_SPACING_MARK) append_lower(c, out);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 d;
    U16_NEXT_UNSAFE(buf, i, d);
    if (u_charType(d) != U_NON_SPACING_MARK) append_lower(static_cast<uint32_t>(d), out);
  }
}

// Normalises and splits `text` into words (code points).
std::vector<std::vector<uint32_t>> bert_words(std::string_view text) {
  std::vector<std::vector<uint32_t>> words(1);
  auto finish_word = [&] {
    if (!words.back().empty()) words.emplace_back();
  };
  std::vector<uint32_t> norm;
  size_t pos = 0;
  while (pos < text.size()) {
    const uint32_t c = utf8_decode(text, &pos);
    if (c == 0 || c == utf8_replacement || is_control(c)) continue;
    if (is_whitespace(c)) {
      finish_word();
      continue;
    }
    norm.clear();
    append_normalized(c, &norm);
    for (uint32_t d : norm) {
      if (is_whitespace(d)) {
        finish_word();
      } else if (is_punctuation(d) || is_cjk(d)) {
        finish_word();
        words.back().push_back(d);
        words.emplace_back();
      } else {
        words.back().push_back(d);
      }
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

// Greedy longest-match pieces of one word; false when some part matches no token.
bool wordpiece(const tok_tables& t, const std::vector<uint32_t>& word, std::vector<int32_t>* out) {
  std::vector<size_t> starts;  // byte offset of each character in `s`
  std::string s;
  for (uint32_t c : word) {
    starts.push_back(s.size());
    utf8_append(s, c);
  }
  starts.push_back(s.size());
  const size_t n_chars = word.size();
  std::string key;
  for (size_t i = 0; i < n_chars;) {
    bool found = false;
    for (size_t j = n_chars; j > i; --j) {
      const size_t len = starts[j] - starts[i];
      if (len + (i == 0 ? k_word_start.size() : 0) > t.max_token_len) continue;
      key.clear();
      if (i == 0) key.append(k_word_start);
      key.append(s, starts[i], len);
      const int32_t id = t.find(key);
      if (id >= 0) {
        out->push_back(id);
        i = j;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

void wpm_tokenize(const tok_tables& t, std::string_view text, std::vector<int32_t>* out) {
  for (const std::vector<uint32_t>& word : bert_words(text)) {
    const size_t mark = out->size();
    if (word.size() > k_max_word_chars || !wordpiece(t, word, out)) {
      out->resize(mark);
      if (t.v->unk >= 0) out->push_back(t.v->unk);
    }
  }
}

}  // namespace lime
