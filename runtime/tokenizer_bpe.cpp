// Byte-level BPE of one text fragment: pre-tokenize into words, map each word's bytes to GPT-2's printable
// code points, then merge adjacent symbols lowest merge rank first. Also the byte <-> unicode tables.
#include <algorithm>
#include <queue>

#include "runtime/tokenizer_impl.h"
#include "runtime/utf8.h"

namespace lime {
namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes keep their code point, the other 68 bytes take
// U+0100.. in byte order.
struct byte_tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // code point -> byte, -1 when not in the table

  byte_tables() {
    to_byte.fill(-1);
    uint32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[static_cast<size_t>(b)] = printable ? static_cast<uint32_t>(b) : extra++;
      to_byte[to_cp[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    }
  }
};

const byte_tables& tables() {
  static const byte_tables t;
  return t;
}

struct bpe_symbol {
  int prev, next;
  size_t off, n;  // byte range in the encoded word; n == 0 once merged away
};

struct bpe_pair {
  int left, right;
  int32_t rank;
  size_t size;  // bytes of the merged text
};

// Lowest rank first; on a tie, the leftmost pair.
struct bpe_pair_order {
  bool operator()(const bpe_pair& a, const bpe_pair& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class bpe_word {
 public:
  bpe_word(const tok_tables& t, std::string_view word) : t_(t), w_(word) {}

  void run(std::vector<int32_t>* out) {
    for (size_t off = 0; off < w_.size();) {
      const size_t n = std::min(utf8_seq_len(static_cast<uint8_t>(w_[off])), w_.size() - off);
      const int idx = static_cast<int>(syms_.size());
      syms_.push_back({idx - 1, off + n == w_.size() ? -1 : idx + 1, off, n});
      off += n;
    }
    for (int i = 1; i < static_cast<int>(syms_.size()); ++i) try_pair(i - 1, i);
    while (!queue_.empty()) {
      const bpe_pair p = queue_.top();
      queue_.pop();
      bpe_symbol& l = syms_[static_cast<size_t>(p.left)];
      bpe_symbol& r = syms_[static_cast<size_t>(p.right)];
      // Symbols only grow, so an unchanged total size means neither side took part in another merge.
      if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms_[static_cast<size_t>(r.next)].prev = p.left;
      try_pair(l.prev, p.left);
      try_pair(p.left, l.next);
    }
    for (const bpe_symbol& s : syms_) {
      if (s.n == 0) continue;
      const std::string_view txt = w_.substr(s.off, s.n);
      const int32_t id = t_.find(txt);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      // Not a token (a merge list that disagrees with the vocabulary): single-byte tokens where present.
      for (char c : txt) {
        const int32_t bid = t_.find(std::string_view(&c, 1));
        if (bid >= 0) out->push_back(bid);
      }
    }
  }

 private:
  void try_pair(int left, int right) {
    if (left < 0 || right < 0) return;
    const bpe_symbol& l = syms_[static_cast<size_t>(left)];
    const bpe_symbol& r = syms_[static_cast<size_t>(right)];
    std::string key;
    key.reserve(l.n + r.n + 1);
    key.append(w_.substr(l.off, l.n)).push_back(' ');
    key.append(w_.substr(r.off, r.n));
    auto it = t_.merge_rank.find(key);
    if (it == t_.merge_rank.end()) return;
    queue_.push({left, right, it->second, l.n + r.n});
  }

  const tok_tables& t_;
  std::string_view w_;
  std::vector<bpe_symbol> syms_;
  std::priority_queue<bpe_pair, std::vector<bpe_pair>, bpe_pair_order> queue_;
};

}  // namespace

std::string bpe_bytes_to_unicode(std::string_view raw) {
  const byte_tables& bt = tables();
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) utf8_append(out, bt.to_cp[static_cast<uint8_t>(c)]);
  return out;
}

std::string bpe_unicode_to_bytes(std::string_view encoded) {
  const byte_tables& bt = tables();
  std::string out;
  out.reserve(encoded.size());
  size_t pos = 0;
  while (pos < encoded.size()) {
    const size_t start = pos;
    const uint32_t cp = utf8_decode(encoded, &pos);
    if (cp < bt.to_byte.size() && bt.to_byte[cp] >= 0) {
      out.push_back(static_cast<char>(bt.to_byte[cp]));
    } else {
      out.append(encoded.substr(start, pos - start));
    }
  }
  return out;
}

void bpe_tokenize(const tok_tables& t, const pretokenizer& pre, std::string_view text, std::vector<int32_t>* out) {
  for (std::string_view word : pre.split(text)) {
    const std::string enc = bpe_bytes_to_unicode(word);
    if (pre.ignore_merges()) {
      const int32_t id = t.find(enc);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
    }
    bpe_word(t, enc).run(out);
  }
}

}  // namespace lime
