// lime-tokenize: prints the token ids of a text under a model's tokenizer (one line, space-separated), and
// with --pieces each id's piece, for comparing tokenization with other implementations. Runs no model.
#include <cstdio>
#include <cstring>
#include <string>

#include "runtime/gguf.h"
#include "runtime/tokenizer.h"
#include "runtime/utf8.h"
#include "runtime/vocab.h"

namespace {

constexpr const char* k_usage =
    "usage: lime-tokenize -m MODEL -p TEXT [--no-bos] [--no-parse-special] [--pieces]\n"
    "  -m MODEL             GGUF file holding the vocabulary\n"
    "  -p TEXT              text to tokenize\n"
    "  --no-bos             do not add the BOS/EOS tokens the vocabulary asks for\n"
    "  --no-parse-special   treat text like <|eot_id|> as plain text\n"
    "  --pieces             also print each id with its piece, one per line\n";

int fail(const std::string& msg) {
  std::fprintf(stderr, "lime-tokenize: %s\n", msg.c_str());
  return 1;
}

// Piece text with control characters and bytes that are not UTF-8 on their own (byte tokens) as escapes.
std::string escape(const std::string& s) {
  std::string out;
  char buf[8];
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const uint32_t c = lime::utf8_decode(s, &pos);
    const bool bad_byte = c == lime::utf8_replacement && pos - start == 1;
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (bad_byte || c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(s[start]));
      out += buf;
    } else {
      out.append(s, start, pos - start);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, text;
  bool have_text = false, add_special = true, parse_special = true, pieces = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-m" || a == "-p") && i + 1 >= argc) return fail("missing value after " + a);
    if (a == "-m") {
      model = argv[++i];
    } else if (a == "-p") {
      text = argv[++i];
      have_text = true;
    } else if (a == "--no-bos") {
      add_special = false;
    } else if (a == "--no-parse-special") {
      parse_special = false;
    } else if (a == "--pieces") {
      pieces = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(k_usage, stdout);
      return 0;
    } else {
      return fail("unknown argument '" + a + "' (see --help)");
    }
  }
  if (model.empty()) return fail("no model given (-m MODEL)");
  if (!have_text) return fail("no text given (-p TEXT)");

  auto file = lime::gguf_file::open(model);
  if (!file.ok()) return fail(file.err().message);
  auto voc = lime::vocab_load(*file);
  if (!voc.ok()) return fail(voc.err().message);
  auto tok = lime::tokenizer::create(std::move(voc.value()));
  if (!tok.ok()) return fail(tok.err().message);

  const std::vector<int32_t> ids = tok->encode(text, add_special, parse_special);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
  if (pieces) {
    for (int32_t id : ids) std::printf("%d\t'%s'\n", id, escape(tok->token_to_piece(id, true)).c_str());
  }
  return 0;
}
