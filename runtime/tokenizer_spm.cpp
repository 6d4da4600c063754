// SentencePiece-style tokenization of one text fragment: start from UTF-8 characters, repeatedly merge the
// adjacent pair whose concatenation is the best-scoring vocabulary token, then emit tokens (bytes as a
// fallback, else unk). The dummy prefix and space escaping are the caller's (tokenizer.cpp).
#include <algorithm>
#include <queue>

#include "runtime/tokenizer_impl.h"
#include "runtime/utf8.h"

namespace lime {
namespace {

struct spm_symbol {
  int prev, next;  // neighbours in the live chain, -1 at the ends
  size_t off, n;   // byte range in the text; n == 0 once merged into its left neighbour
};

struct spm_pair {
  int left, right;
  float score;
  size_t size;  // bytes of the merged text, to spot pairs made stale by other merges
};

// Highest score first; on a tie, the leftmost pair.
struct spm_pair_order {
  bool operator()(const spm_pair& a, const spm_pair& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class spm_session {
 public:
  spm_session(const tok_tables& t, std::string_view text) : t_(t), text_(text) {}

  void run(std::vector<int32_t>* out) {
    // Symbols are characters; a byte that does not start a valid sequence is a symbol of its own (llama.cpp
    // trusts the lead byte instead, which lets a stray byte swallow an escaped space that follows it).
    for (size_t off = 0; off < text_.size();) {
      size_t end = off;
      utf8_decode(text_, &end);
      const int idx = static_cast<int>(syms_.size());
      syms_.push_back({idx - 1, end == text_.size() ? -1 : idx + 1, off, end - off});
      off = end;
    }
    for (int i = 1; i < static_cast<int>(syms_.size()); ++i) try_pair(i - 1, i);

    while (!queue_.empty()) {
      const spm_pair p = queue_.top();
      queue_.pop();
      spm_symbol& l = syms_[static_cast<size_t>(p.left)];
      spm_symbol& r = syms_[static_cast<size_t>(p.right)];
      if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;  // stale
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms_[static_cast<size_t>(r.next)].prev = p.left;
      try_pair(l.prev, p.left);
      try_pair(p.left, l.next);
    }
    if (syms_.empty()) return;
    for (int i = 0; i != -1; i = syms_[static_cast<size_t>(i)].next) emit(syms_[static_cast<size_t>(i)], out);
  }

 private:
  std::string_view text_of(const spm_symbol& s) const { return text_.substr(s.off, s.n); }

  void try_pair(int left, int right) {
    if (left < 0 || right < 0) return;
    const spm_symbol& l = syms_[static_cast<size_t>(left)];
    const spm_symbol& r = syms_[static_cast<size_t>(right)];
    const int32_t id = t_.find(text_.substr(l.off, l.n + r.n));
    if (id < 0) return;
    queue_.push({left, right, t_.score(id), l.n + r.n});
  }

  // Emits a final symbol: its token, else its bytes. Merged symbols are always tokens (a pair is queued
  // only when its text is one), so only unmerged characters can need the byte fallback.
  void emit(const spm_symbol& s, std::vector<int32_t>* out) {
    const std::string_view txt = text_of(s);
    const int32_t id = t_.find(txt);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
    const size_t mark = out->size();
    for (char c : txt) {
      int32_t bid = t_.byte_token[static_cast<uint8_t>(c)];
      if (bid < 0) bid = t_.find(std::string_view(&c, 1));
      if (bid < 0) {  // no byte fallback for this character: one unk stands for all of it
        out->resize(mark);
        if (t_.v->unk >= 0) out->push_back(t_.v->unk);
        return;
      }
      out->push_back(bid);
    }
  }

  const tok_tables& t_;
  std::string_view text_;
  std::vector<spm_symbol> syms_;
  std::priority_queue<spm_pair, std::vector<spm_pair>, spm_pair_order> queue_;
};

}  // namespace

void spm_tokenize(const tok_tables& t, std::string_view text, std::vector<int32_t>* out) {
  spm_session(t, text).run(out);
}

}  // namespace lime
