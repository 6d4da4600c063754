// BPE pre-tokenizer regexes by tokenizer.ggml.pre name, compiled with PCRE2 in UTF + UCP mode (so \p{L},
// \p{N}, \s are Unicode-aware), and the split loop. The regexes are the ones the models' tokenizer.json
// files define; where a tokenizer.json used (?i:...) only around ASCII we spell the cases out instead.
#include "runtime/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <initializer_list>

#include "runtime/utf8.h"

namespace lime {
namespace {

// GPT-2's word regex (also the second stage of several others).
constexpr const char* k_gpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
#define LIME_CONTRACTIONS R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))re"
// Llama 3 (tiktoken cl100k-style): letters with one leading non-letter, digits in groups of up to three.
constexpr const char* k_llama3 = LIME_CONTRACTIONS
    R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// Qwen2: as Llama 3 but one digit per piece.
constexpr const char* k_qwen2 = LIME_CONTRACTIONS
    R"re(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// GPT-4o / Llama 4 (o200k): case-aware words with an optional trailing contraction.
constexpr const char* k_gpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)re" LIME_CONTRACTIONS
    R"re(?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)re" LIME_CONTRACTIONS
    R"re(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// Mistral Tekken.
constexpr const char* k_tekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)re"
    R"re(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)re"
    R"re(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
#undef LIME_CONTRACTIONS

// CJK ideographs (U+4E00..U+9FA5), U+0800..U+4E00 and Hangul, as DeepSeek's tokenizer.json groups them.
constexpr const char* k_deepseek_cjk = R"re([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";
// DeepSeek LLM's explicit list of cased-letter ranges.
constexpr const char* k_deepseek_letters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})re"
    R"re(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})re"
    R"re(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})re"
    R"re(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77})re"
    R"re(\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D})re"
    R"re(\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC})re"
    R"re(\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC})re"
    R"re(\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D})re"
    R"re(\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})re"
    R"re(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE})re"
    R"re(\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})re"
    R"re(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A})re"
    R"re(\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2})re"
    R"re(\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";
constexpr const char* k_deepseek_punct =
    R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re";
constexpr const char* k_deepseek3_words =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+)re"
    R"re(| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// BLOOM / Poro: a word is anything up to whitespace or one of a few (also CJK/Indic) punctuation marks.
constexpr const char* k_bloom = R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{0964}\x{06D4}\x{060C})]+)re";

struct pre_def {
  std::vector<const char*> regexes;
  bool ignore_merges = false;
};

bool name_in(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Returns false for names we do not know.
bool lookup(std::string_view pre, pre_def* d) {
  if (pre.empty() || pre == "default") {
    d->regexes = {R"re([\p{P}\$\+<=>\^~\|]+)re", k_gpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"};
  } else if (name_in(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                           "lfm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
    d->regexes = {k_llama3};
    d->ignore_merges = !name_in(pre, {"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"});
  } else if (name_in(pre, {"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez", "grok-2"})) {
    d->regexes = {k_qwen2};
  } else if (pre == "deepseek-llm") {
    d->regexes = {"[\\r\\n]", k_deepseek_letters, k_deepseek_punct, R"re(\s+$)re", k_deepseek_cjk, R"re(\p{N}+)re"};
  } else if (pre == "deepseek-coder") {
    d->regexes = {"[\\r\\n]", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", k_deepseek_cjk, R"re(\p{N})re"};
  } else if (pre == "deepseek-v3") {
    d->regexes = {R"re(\p{N}{1,3})re", R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
                  k_deepseek3_words};
  } else if (pre == "falcon") {
    d->regexes = {R"re([\p{P}\$\+<=>\^~\|`]+)re", k_gpt2, "[0-9][0-9][0-9]"};
  } else if (name_in(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})) {
    d->regexes = {R"re(\p{N})re", k_gpt2};
  } else if (name_in(pre, {"gpt-2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "jina-v1-en",
                           "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat", "exaone4",
                           "trillion", "granite-docling", "mellum", "a.x-4.0", "modern-bert"})) {
    d->regexes = {k_gpt2};
  } else if (name_in(pre, {"gpt-4o", "llama4", "minimax-m2"})) {
    d->regexes = {k_gpt4o};
  } else if (pre == "tekken") {
    d->regexes = {k_tekken};
    d->ignore_merges = true;
  } else if (name_in(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
    d->regexes = {k_bloom};
  } else if (pre == "viking") {
    d->regexes = {k_bloom, R"re(\p{N})re"};
  } else {
    return false;
  }
  return true;
}

struct span {
  size_t begin, end;  // byte offsets into the text
};

}  // namespace

struct pretokenizer::impl {
  std::string name;
  std::vector<pcre2_code*> codes;
  bool ignore_merges = false;

  ~impl() {
    for (pcre2_code* c : codes) pcre2_code_free(c);
  }

  // Splits each span by one regex: matches and the gaps between them become spans.
  void apply(pcre2_code* code, std::string_view text, const std::vector<span>& in, std::vector<span>* out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    for (const span& sp : in) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + sp.begin);
      const size_t len = sp.end - sp.begin;
      size_t start = 0, last = 0;
      while (start < len) {
        int rc = pcre2_match(code, subject, len, start, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          rc = pcre2_match(code, subject, len, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
        }
        if (rc < 0) break;  // no match (or a resource limit): the rest stays one piece
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t m0 = ov[0], m1 = ov[1];
        if (m1 <= m0) {  // empty match: step over one character
          start = m0 + utf8_seq_len(static_cast<uint8_t>(text[sp.begin + m0]));
          continue;
        }
        if (m0 > last) out->push_back({sp.begin + last, sp.begin + m0});
        out->push_back({sp.begin + m0, sp.begin + m1});
        last = start = m1;
      }
      if (last < len) out->push_back({sp.begin + last, sp.end});
    }
    pcre2_match_data_free(md);
  }
};

pretokenizer::pretokenizer() : impl_(std::make_unique<impl>()) {}
pretokenizer::pretokenizer(pretokenizer&&) noexcept = default;
pretokenizer& pretokenizer::operator=(pretokenizer&&) noexcept = default;
pretokenizer::~pretokenizer() = default;

result<pretokenizer> pretokenizer::create(std::string_view pre) {
  pre_def def;
  if (!lookup(pre, &def)) {
    return make_error(errc::unsupported, "tokenizer: unknown pre-tokenizer '" + std::string(pre) + "'");
  }
  pretokenizer p;
  p.impl_->name = std::string(pre.empty() ? "default" : pre);
  p.impl_->ignore_merges = def.ignore_merges;
  for (const char* re : def.regexes) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return make_error(errc::internal, "tokenizer: regex for '" + p.impl_->name + "' does not compile at " +
                                            std::to_string(err_off) + ": " + reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter is the fallback
    p.impl_->codes.push_back(code);
  }
  return p;
}

std::vector<std::string_view> pretokenizer::split(std::string_view text) const {
  std::vector<std::string_view> out;
  if (text.empty()) return out;
  if (!utf8_valid(text)) {  // precondition broken: never hand PCRE2 bad UTF-8
    out.push_back(text);
    return out;
  }
  std::vector<span> spans{{0, text.size()}}, next;
  for (pcre2_code* code : impl_->codes) {
    next.clear();
    impl_->apply(code, text, spans, &next);
    spans.swap(next);
  }
  out.reserve(spans.size());
  for (const span& s : spans) out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

bool pretokenizer::ignore_merges() const { return impl_->ignore_merges; }
const std::string& pretokenizer::name() const { return impl_->name; }

}  // namespace lime
