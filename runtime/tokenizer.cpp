// tokenizer: validates a vocab and builds its lookup tables; encode splits out special tokens (longest
// first), then hands each plain-text fragment to the SPM / BPE / WordPiece algorithm; decode maps ids back to
// bytes. detokenizer_stream holds back incomplete UTF-8 between tokens.
#include "runtime/tokenizer.h"

#include <algorithm>
#include <cctype>

#include "runtime/tokenizer_impl.h"
#include "runtime/utf8.h"

namespace lime {
namespace {

constexpr std::string_view k_space_marker = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

enum strip_flags : uint8_t { strip_left = 1, strip_right = 2 };

struct fragment {
  int32_t token;      // -1: plain text [off, off + len) of the input
  size_t off, len;
};

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos)).append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// The leading space of the first piece is an artefact of the tokenizer (SPM dummy prefix, WordPiece word
// marker), not of the text.
bool strips_dummy_prefix(const vocab& v) {
  return (v.kind == vocab_kind::spm && v.add_space_prefix) || v.kind == vocab_kind::wpm;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB, or -1.
int parse_byte_token(const std::string& s) {
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return -1;
  const int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
  return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

}  // namespace

struct tokenizer::impl {
  vocab v;
  tok_tables t;
  std::unique_ptr<pretokenizer> pre;  // BPE only
  std::vector<int32_t> specials;      // control / user-defined / unknown ids, longest text first
  std::vector<uint8_t> strip;         // strip_flags per id (phi-3 and a few others)
  std::vector<std::string> pieces;    // token_to_piece(id, special = true)

  bool is_control_like(int32_t id) const {
    const token_attr a = t.type(id);
    return a == token_attr::control || a == token_attr::unknown;
  }

  std::string make_piece(int32_t id) const;
  std::vector<fragment> partition(std::string_view text, bool parse_special) const;
  void encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>* out) const;
};

std::string tokenizer::impl::make_piece(int32_t id) const {
  const std::string& text = v.tokens[static_cast<size_t>(id)];
  switch (t.type(id)) {
    case token_attr::control: case token_attr::unknown: case token_attr::user_defined:
      return text;
    case token_attr::byte: {
      const int b = parse_byte_token(text);
      return b < 0 ? std::string() : std::string(1, static_cast<char>(b));
    }
    case token_attr::normal:
      if (v.kind == vocab_kind::bpe) return bpe_unicode_to_bytes(text);
      return replace_all(text, k_space_marker, " ");
    default:
      return std::string();  // unused / undefined tokens stand for no text
  }
}

// Splits out special tokens, longest first. Control and unknown tokens only with parse_special;
// user-defined tokens always (they are part of the vocabulary's text, as in HF tokenizers).
std::vector<fragment> tokenizer::impl::partition(std::string_view text, bool parse_special) const {
  std::vector<fragment> frags, next;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  for (int32_t id : specials) {
    if (!parse_special && is_control_like(id)) continue;
    const std::string& tok = v.tokens[static_cast<size_t>(id)];
    const uint8_t st = strip[static_cast<size_t>(id)];
    next.clear();
    for (const fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.off;
      const size_t end = f.off + f.len;
      const std::string_view window = text.substr(0, end);
      for (;;) {
        const size_t hit = window.find(tok, pos);
        if (hit == std::string_view::npos) {
          if (pos < end) next.push_back({-1, pos, end - pos});
          break;
        }
        size_t left_end = hit;
        if (st & strip_left) {
          while (left_end > pos && is_ascii_space(text[left_end - 1])) --left_end;
        }
        if (left_end > pos) next.push_back({-1, pos, left_end - pos});
        next.push_back({id, hit, tok.size()});
        pos = hit + tok.size();
        if (st & strip_right) {
          while (pos < end && is_ascii_space(text[pos])) ++pos;
        }
      }
    }
    frags.swap(next);
  }
  return frags;
}

void tokenizer::impl::encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>* out) const {
  switch (v.kind) {
    case vocab_kind::spm: {
      std::string s;
      if (prefix_space) s.push_back(' ');
      s.append(text);
      spm_tokenize(t, replace_all(s, " ", k_space_marker), out);
      break;
    }
    case vocab_kind::bpe: {
      // Invalid bytes become U+FFFD before pre-tokenizing, as llama.cpp does.
      const std::string clean = utf8_sanitize(text);
      bpe_tokenize(t, *pre, clean, out);
      break;
    }
    case vocab_kind::wpm:
      wpm_tokenize(t, text, out);
      break;
    case vocab_kind::none:
      break;
  }
}

tokenizer::tokenizer() : impl_(std::make_unique<impl>()) {}
tokenizer::tokenizer(tokenizer&&) noexcept = default;
tokenizer& tokenizer::operator=(tokenizer&&) noexcept = default;
tokenizer::~tokenizer() = default;

const vocab& tokenizer::get_vocab() const { return impl_->v; }

result<tokenizer> tokenizer::create(vocab v) {
  const size_t n = v.tokens.size();
  if (v.kind == vocab_kind::none) {
    return make_error(errc::unsupported, "tokenizer: unsupported tokenizer model '" + v.model + "'");
  }
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) return make_error(errc::bad_format, "tokenizer: empty vocabulary");
  if (!v.scores.empty() && v.scores.size() != n) return make_error(errc::bad_format, "tokenizer: scores/tokens length mismatch");
  if (!v.types.empty() && v.types.size() != n) return make_error(errc::bad_format, "tokenizer: types/tokens length mismatch");
  for (int32_t id : {v.bos, v.eos, v.eot, v.eom, v.unk, v.pad, v.sep, v.mask}) {
    if (id < -1 || id >= static_cast<int32_t>(n)) {
      return make_error(errc::bad_format, "tokenizer: special id " + std::to_string(id) + " out of range");
    }
  }
  tokenizer tok;
  impl& m = *tok.impl_;
  m.v = std::move(v);
  m.t.v = &m.v;
  const vocab& vb = m.v;
  m.t.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& s = vb.tokens[i];
    if (s.empty()) continue;
    if (!m.t.token_to_id.emplace(s, static_cast<int32_t>(i)).second) {
      return make_error(errc::bad_format, "tokenizer: duplicate token '" + s + "' at id " + std::to_string(i));
    }
    m.t.max_token_len = std::max(m.t.max_token_len, s.size());
  }
  m.t.byte_token.fill(-1);
  if (vb.kind == vocab_kind::spm) {
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
      m.t.byte_token[static_cast<size_t>(b)] = m.t.find(name);
    }
  }
  if (vb.kind == vocab_kind::bpe) {
    LIME_TRY(pretokenizer p, pretokenizer::create(vb.pre));
    m.pre = std::make_unique<pretokenizer>(std::move(p));
    m.t.merge_rank.reserve(vb.merges.size());
    for (size_t i = 0; i < vb.merges.size(); ++i) {
      const std::string& mg = vb.merges[i];
      if (mg.find(' ', 1) == std::string::npos) continue;  // malformed: cannot apply
      m.t.merge_rank.emplace(mg, static_cast<int32_t>(i));  // duplicates: the first (lowest) rank wins
    }
  }
  for (int32_t id = 0; id < static_cast<int32_t>(n); ++id) {
    const token_attr a = m.t.type(id);
    const bool special = a == token_attr::control || a == token_attr::user_defined || a == token_attr::unknown;
    if (special && !vb.tokens[static_cast<size_t>(id)].empty()) m.specials.push_back(id);
  }
  std::stable_sort(m.specials.begin(), m.specials.end(), [&](int32_t a, int32_t b) {
    return vb.tokens[static_cast<size_t>(a)].size() > vb.tokens[static_cast<size_t>(b)].size();
  });
  m.strip.assign(n, 0);
  std::string name = vb.name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    // Phi-3's added tokens swallow the whitespace after them (rstrip in its tokenizer.json).
    for (int32_t id : m.specials) m.strip[static_cast<size_t>(id)] |= strip_right;
    for (const char* s : {"</s>"}) {
      if (int32_t id = m.t.find(s); id >= 0) m.strip[static_cast<size_t>(id)] |= strip_right;
    }
    for (const char* s : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (int32_t id = m.t.find(s); id >= 0) m.strip[static_cast<size_t>(id)] &= ~strip_right;
    }
  } else if (vb.pre == "jina-v2-de" || vb.pre == "jina-v2-es" || vb.pre == "jina-v2-code") {
    if (int32_t id = m.t.find("<mask>"); id >= 0) m.strip[static_cast<size_t>(id)] |= strip_left;
  }
  m.pieces.resize(n);
  for (int32_t id = 0; id < static_cast<int32_t>(n); ++id) m.pieces[static_cast<size_t>(id)] = m.make_piece(id);
  return tok;
}

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const impl& m = *impl_;
  const vocab& v = m.v;
  std::vector<int32_t> out;
  if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);
  // SPM adds the dummy-prefix space at the start and again after every special token (llama.cpp's rule).
  bool after_special = true;
  for (const fragment& f : m.partition(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    m.encode_text(text.substr(f.off, f.len), v.add_space_prefix && after_special, &out);
    after_special = false;
  }
  if (add_special && v.add_eos && v.eos >= 0) out.push_back(v.eos);
  if (add_special && v.kind == vocab_kind::wpm && v.add_sep && v.sep >= 0) out.push_back(v.sep);
  return out;
}

std::string tokenizer::token_to_piece(int32_t id, bool special) const {
  const impl& m = *impl_;
  if (id < 0 || id >= m.v.n_tokens()) return std::string();
  if (!special && m.is_control_like(id)) return std::string();
  return m.pieces[static_cast<size_t>(id)];
}

std::string tokenizer::decode(const std::vector<int32_t>& ids, bool special, bool remove_space_prefix) const {
  bool strip = remove_space_prefix && strips_dummy_prefix(impl_->v);
  std::string out;
  for (int32_t id : ids) {
    std::string p = token_to_piece(id, special);
    if (strip && !p.empty()) {
      if (p[0] == ' ') p.erase(0, 1);
      strip = false;
    }
    out += p;
  }
  return out;
}

detokenizer_stream::detokenizer_stream(const tokenizer& tok, bool special, bool remove_space_prefix)
    : tok_(&tok), special_(special), strip_prefix_(remove_space_prefix && strips_dummy_prefix(tok.get_vocab())) {}

std::string detokenizer_stream::push(int32_t id) {
  std::string p = tok_->token_to_piece(id, special_);
  if (strip_prefix_ && !p.empty()) {
    if (p[0] == ' ') p.erase(0, 1);
    strip_prefix_ = false;
  }
  pending_ += p;
  const size_t n = utf8_complete_prefix(pending_);
  std::string ready = pending_.substr(0, n);
  pending_.erase(0, n);
  return ready;
}

std::string detokenizer_stream::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace lime
