// UTF-8 helpers (see utf8.h). Strict decoding as RFC 3629 defines it; no allocation beyond the outputs.
#include "runtime/utf8.h"

namespace lime {
namespace {

bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

// Allowed range of the second byte for a given lead byte (RFC 3629 table): excludes overlongs, surrogates
// and code points above U+10FFFF.
bool second_ok(uint8_t lead, uint8_t b1) {
  if (lead == 0xE0) return b1 >= 0xA0 && b1 <= 0xBF;
  if (lead == 0xED) return b1 >= 0x80 && b1 <= 0x9F;
  if (lead == 0xF0) return b1 >= 0x90 && b1 <= 0xBF;
  if (lead == 0xF4) return b1 >= 0x80 && b1 <= 0x8F;
  return is_cont(b1);
}

// Expected length for a valid lead byte, 0 for a byte that can never start a character.
size_t lead_len(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// True when the k bytes at p (k >= 1, k <= expected length) are a well-formed start of a character.
bool prefix_well_formed(const uint8_t* p, size_t k) {
  if (k >= 2 && !second_ok(p[0], p[1])) return false;
  for (size_t i = 2; i < k; ++i) {
    if (!is_cont(p[i])) return false;
  }
  return true;
}

}  // namespace

size_t utf8_seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

uint32_t utf8_decode(std::string_view s, size_t* pos) {
  const size_t i = *pos;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const size_t avail = s.size() - i;
  const size_t len = lead_len(p[0]);
  if (len == 0 || len > avail || !prefix_well_formed(p, len)) {
    *pos = i + 1;
    return utf8_replacement;
  }
  uint32_t cpt = 0;
  switch (len) {
    case 1: cpt = p[0]; break;
    case 2: cpt = (uint32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F); break;
    case 3: cpt = (uint32_t(p[0] & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F); break;
    default:
      cpt = (uint32_t(p[0] & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
            (p[3] & 0x3F);
      break;
  }
  *pos = i + len;
  return cpt;
}

void utf8_append(std::string& out, uint32_t cpt) {
  if (cpt > 0x10FFFF || (cpt >= 0xD800 && cpt <= 0xDFFF)) cpt = utf8_replacement;
  if (cpt < 0x80) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

std::string utf8_encode(uint32_t cpt) {
  std::string s;
  utf8_append(s, cpt);
  return s;
}

std::vector<uint32_t> utf8_to_cpts(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) out.push_back(utf8_decode(s, &pos));
  return out;
}

bool utf8_valid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    const uint32_t c = utf8_decode(s, &pos);
    // U+FFFD spelled out in the input is valid (3 bytes); a replacement for a bad byte advances by one.
    if (c == utf8_replacement && pos - start == 1) return false;
  }
  return true;
}

std::string utf8_sanitize(std::string_view s) {
  if (utf8_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    const uint32_t c = utf8_decode(s, &pos);
    if (c == utf8_replacement && pos - start == 1) {
      utf8_append(out, utf8_replacement);
    } else {
      out.append(s.data() + start, pos - start);
    }
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view s) {
  const size_t n = s.size();
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  // Find the last byte that is not a continuation byte, looking back at most 3 bytes from the end.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    if (is_cont(p[i])) continue;
    const size_t len = lead_len(p[i]);
    if (len > back && prefix_well_formed(p + i, back)) return i;  // incomplete, may still complete
    return n;
  }
  return n;
}

}  // namespace lime
