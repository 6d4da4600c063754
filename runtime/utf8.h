// UTF-8 helpers for the tokenizers: decode/encode code points, strict validation, sanitising (invalid bytes ->
// U+FFFD) and the length of the longest prefix that does not end inside a character (for streaming output).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lime {

constexpr uint32_t utf8_replacement = 0xFFFD;

// Length in bytes of the sequence a lead byte announces: 1 for ASCII, 2..4 for lead bytes, 1 for a stray
// continuation byte or an invalid lead (0xF8..0xFF), so callers always make progress.
size_t utf8_seq_len(uint8_t lead);

// Decodes one code point at s[*pos] and advances *pos. Strict (no overlongs, no surrogates, <= U+10FFFF);
// an invalid or truncated sequence yields U+FFFD and advances by one byte.
uint32_t utf8_decode(std::string_view s, size_t* pos);

// Appends the UTF-8 encoding of cpt (values above U+10FFFF or surrogates append U+FFFD).
void utf8_append(std::string& out, uint32_t cpt);
std::string utf8_encode(uint32_t cpt);

std::vector<uint32_t> utf8_to_cpts(std::string_view s);  // invalid bytes become U+FFFD, one per byte
bool utf8_valid(std::string_view s);
// The text with every invalid byte replaced by U+FFFD (a copy of s when it is already valid).
std::string utf8_sanitize(std::string_view s);

// Bytes of s up to the start of a trailing incomplete (but so far well-formed) sequence: at most 3 bytes are
// held back. Invalid bytes are not held back (they can never complete).
size_t utf8_complete_prefix(std::string_view s);

}  // namespace lime
