// Model generator: published shapes, llama.cpp's Q4_K_M type rule, files of every type that lime loads and runs
// with finite logits, determinism (seed, thread count), weight statistics, rope factors, the fast K-quant encoders
// and the generated BPE vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "kernels/cpu/quants.h"
#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/model_gen.h"
#include "runtime/session.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"

namespace lime {
namespace {

model_shape small_shape(int32_t n_layer = 2) {
  model_shape s;
  s.name = "custom";
  s.n_vocab = 300;
  s.n_ctx = 128;
  s.n_embd = 256;
  s.n_ff = 512;
  s.n_layer = n_layer;
  s.n_head = 4;
  s.n_head_kv = 2;
  return s;
}

model_gen_options small_options(model_ftype f, uint64_t seed = 1) {
  model_gen_options o;
  o.shape = small_shape();
  o.ftype = f;
  o.seed = seed;
  o.n_threads = 2;
  return o;
}

std::vector<uint8_t> generate(const model_gen_options& o) {
  auto bytes = model_gen_write_memory(o);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.err().message);
  return bytes.ok() ? std::move(bytes.value()) : std::vector<uint8_t>{};
}

std::vector<float> tensor_values(const gguf_file& f, const std::string& name) {
  const gguf_tensor_info* t = f.find_tensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->n_elements()));
  EXPECT_EQ(cpu::dequantize_row(t->type, f.tensor_data(*t), v.data(), t->n_elements()), kstatus::ok);
  return v;
}

TEST(model_gen, shapes_match_published_parameter_counts) {
  // Published sizes: Llama-3.2-1B 1.24B, TinyLlama 1.1B, Llama-2-7B 6.74B, Llama-3-8B 8.03B, Llama-3.3-70B 70.6B.
  const std::pair<const char*, double> published[] = {{"tinyllama-1.1b", 1.10e9}, {"llama-3.2-1b", 1.24e9},
                                                      {"llama-2-7b", 6.74e9},     {"llama-3-8b", 8.03e9},
                                                      {"llama-3.3-70b", 70.6e9}};
  for (const auto& [name, n] : published) {
    auto s = model_shape_find(name);
    ASSERT_TRUE(s.ok()) << name;
    EXPECT_NEAR(static_cast<double>(s->n_params()), n, 0.01 * n) << name;
    EXPECT_TRUE(model_shape_check(*s).ok()) << name;
  }
  auto s110 = model_shape_find("stories110M");
  ASSERT_TRUE(s110.ok());
  // llama2.c's 110M counts the tied classifier once; GGUF conversions store output.weight separately.
  EXPECT_NEAR(static_cast<double>(s110->n_params() - 32000ull * 768), 110e6, 2e6);
  EXPECT_TRUE(model_shape_find("llama-3.2-1b")->tied);
  EXPECT_EQ(model_shape_find("llama-3.3-70b")->n_head_kv, 8);
  EXPECT_FALSE(model_shape_find("gpt-5").ok());
}

TEST(model_gen, ftype_names_round_trip) {
  for (const char* n : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q5_k_m", "q6_k"}) {
    auto f = model_ftype_from_name(n);
    ASSERT_TRUE(f.ok()) << n;
    EXPECT_STREQ(model_ftype_name(*f), n);
  }
  EXPECT_EQ(*model_ftype_from_name("Q4_K_M"), model_ftype::q4_k_m);
  EXPECT_EQ(static_cast<uint32_t>(model_ftype::q4_k_m), 15u);  // llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M
  EXPECT_FALSE(model_ftype_from_name("q3_k_xl").ok());
}

TEST(model_gen, q4_k_m_rule_for_llama_3_2_1b) {
  const model_shape s = *model_shape_find("llama-3.2-1b");
  const model_ftype f = model_ftype::q4_k_m;
  // 16 layers: n/8 = 2, so layers 0, 1, 14, 15 and (i - 2) % 3 == 2 -> 4, 7, 10, 13 use more bits.
  const std::set<int> more = {0, 1, 4, 7, 10, 13, 14, 15};
  for (int l = 0; l < 16; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const tensor_type want = more.count(l) ? tensor_type::q6_k : tensor_type::q4_k;
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "attn_v.weight"), want) << l;
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "ffn_down.weight"), want) << l;
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "attn_q.weight"), tensor_type::q4_k);
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "attn_k.weight"), tensor_type::q4_k);
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "attn_output.weight"), tensor_type::q4_k);
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "ffn_gate.weight"), tensor_type::q4_k);
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "ffn_up.weight"), tensor_type::q4_k);
    EXPECT_EQ(model_gen_tensor_type(s, f, p + "attn_norm.weight"), tensor_type::f32);
  }
  // Tied embeddings: token_embd is the output head, so it gets the head's q6_k.
  EXPECT_EQ(model_gen_tensor_type(s, f, "token_embd.weight"), tensor_type::q6_k);
  EXPECT_EQ(model_gen_tensor_type(s, f, "rope_freqs.weight"), tensor_type::f32);
}

TEST(model_gen, head_and_70b_rules) {
  const model_shape l8 = *model_shape_find("llama-3-8b");
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::q4_k_m, "output.weight"), tensor_type::q6_k);
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::q4_k_m, "token_embd.weight"), tensor_type::q4_k);
  // Legacy quantized files also get a q6_k head (llama.cpp: every type but q8_0); unquantized files keep theirs.
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::q4_0, "output.weight"), tensor_type::q6_k);
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::q4_0, "token_embd.weight"), tensor_type::q4_0);
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::q8_0, "output.weight"), tensor_type::q8_0);
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::f16, "output.weight"), tensor_type::f16);
  EXPECT_EQ(model_gen_tensor_type(l8, model_ftype::bf16, "blk.3.ffn_down.weight"), tensor_type::bf16);
  // 80 layers with GQA is llama.cpp's 70B: attn_v outside the more-bits layers is q5_k instead of q4_k.
  const model_shape l70 = *model_shape_find("llama-3.3-70b");
  EXPECT_EQ(model_gen_tensor_type(l70, model_ftype::q4_k_m, "blk.11.attn_v.weight"), tensor_type::q5_k);
  EXPECT_EQ(model_gen_tensor_type(l70, model_ftype::q4_k_m, "blk.0.attn_v.weight"), tensor_type::q6_k);
  EXPECT_EQ(model_gen_tensor_type(l70, model_ftype::q4_k_m, "blk.11.ffn_down.weight"), tensor_type::q4_k);
  // Rows that 256 does not divide fall back like llama.cpp: q4_k -> q5_0, q6_k -> q8_0.
  model_shape narrow = small_shape();
  narrow.n_embd = 64;
  narrow.n_ff = 96;
  EXPECT_EQ(model_gen_tensor_type(narrow, model_ftype::q4_k_m, "blk.0.attn_q.weight"), tensor_type::q5_0);
  EXPECT_EQ(model_gen_tensor_type(narrow, model_ftype::q4_k_m, "output.weight"), tensor_type::q8_0);
}

TEST(model_gen, q4_k_m_file_puts_q6_k_where_the_rule_says) {
  model_gen_options o = small_options(model_ftype::q4_k_m);
  o.shape.n_layer = 8;  // more bits in layers 0, 3, 6, 7
  const std::vector<uint8_t> bytes = generate(o);
  auto f = gguf_file::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok()) << f.err().message;
  const std::set<int> more = {0, 3, 6, 7};
  int n_q6 = 0;
  for (const gguf_tensor_info& t : f->tensors()) {
    if (t.type == tensor_type::q6_k) ++n_q6;
    int layer = -1;
    if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) != 1) continue;
    const bool v_or_down = t.name.find("attn_v") != std::string::npos || t.name.find("ffn_down") != std::string::npos;
    if (t.n_dims == 1) EXPECT_EQ(t.type, tensor_type::f32) << t.name;
    else if (v_or_down && more.count(layer)) EXPECT_EQ(t.type, tensor_type::q6_k) << t.name;
    else EXPECT_EQ(t.type, tensor_type::q4_k) << t.name;
  }
  EXPECT_EQ(f->find_tensor("output.weight")->type, tensor_type::q6_k);
  EXPECT_EQ(f->find_tensor("token_embd.weight")->type, tensor_type::q4_k);
  EXPECT_EQ(n_q6, 2 * 4 + 1);
  EXPECT_EQ(f->get<uint32_t>("general.file_type").value(), 15u);
}

class model_gen_types : public ::testing::TestWithParam<model_ftype> {};

TEST_P(model_gen_types, lime_loads_and_runs_it_with_finite_logits) {
  const std::vector<uint8_t> bytes = generate(small_options(GetParam()));
  auto f = gguf_file::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok()) << f.err().message;
  for (const char* key : {"general.alignment", "general.file_type", "llama.context_length", "llama.embedding_length",
                          "llama.block_count", "llama.feed_forward_length", "llama.rope.dimension_count",
                          "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base", "llama.vocab_size",
                          "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"}) {
    EXPECT_NE(f->find(key), nullptr) << key;
  }
  for (const model_gen_tensor& t : model_gen_plan(small_shape(), GetParam())) {
    const gguf_tensor_info* info = f->find_tensor(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->type, t.type) << t.name;
  }
  auto voc = vocab_load(*f);
  ASSERT_TRUE(voc.ok()) << voc.err().message;
  auto m = model::from_gguf(std::move(f.value()));
  ASSERT_TRUE(m.ok()) << m.err().message;
  EXPECT_EQ(m->hparams().n_vocab, 300);
  EXPECT_EQ(m->hparams().n_head_kv, 2);
  session_config cfg;
  cfg.n_threads = 2;
  auto s = session::create(*m, *voc, cfg);
  ASSERT_TRUE(s.ok()) << s.err().message;
  auto logits = (*s)->eval_logits({voc->bos, 17, 42, 299, 5});
  ASSERT_TRUE(logits.ok()) << logits.err().message;
  ASSERT_EQ(logits->size(), 300u);
  float lo = INFINITY, hi = -INFINITY;
  for (float v : *logits) {
    ASSERT_TRUE(std::isfinite(v));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GT(hi - lo, 1e-3f);  // random weights give distinct logits, not a constant row
}

INSTANTIATE_TEST_SUITE_P(all, model_gen_types,
                         ::testing::Values(model_ftype::all_f32, model_ftype::f16, model_ftype::bf16, model_ftype::q8_0,
                                           model_ftype::q4_0, model_ftype::q4_1, model_ftype::q5_0, model_ftype::q5_1,
                                           model_ftype::q4_k_m, model_ftype::q5_k_m, model_ftype::q6_k),
                         [](const ::testing::TestParamInfo<model_ftype>& i) { return std::string(model_ftype_name(i.param)); });

TEST(model_gen, deep_model_keeps_activations_finite) {
  // 32 layers at the generator's weight scale: the residual stream must neither overflow nor collapse.
  model_gen_options o = small_options(model_ftype::q8_0);
  o.shape.n_layer = 32;
  const std::vector<uint8_t> bytes = generate(o);
  auto f = gguf_file::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok());
  auto voc = vocab_load(*f);
  ASSERT_TRUE(voc.ok());
  auto m = model::from_gguf(std::move(f.value()));
  ASSERT_TRUE(m.ok()) << m.err().message;
  session_config cfg;
  cfg.n_threads = 2;
  auto s = session::create(*m, *voc, cfg);
  ASSERT_TRUE(s.ok());
  std::vector<int32_t> prompt;
  for (int i = 0; i < 24; ++i) prompt.push_back((i * 37 + 1) % 300);
  auto logits = (*s)->eval_logits(prompt);
  ASSERT_TRUE(logits.ok()) << logits.err().message;
  float lo = INFINITY, hi = -INFINITY;
  for (float v : *logits) {
    ASSERT_TRUE(std::isfinite(v));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GT(hi - lo, 0.01f);
  EXPECT_LT(hi - lo, 100.f);  // softmax stays well-conditioned
}

TEST(model_gen, same_seed_same_bytes_any_thread_count_other_seed_differs) {
  model_gen_options o = small_options(model_ftype::q4_k_m, 7);
  const std::vector<uint8_t> a = generate(o);
  o.n_threads = 3;
  const std::vector<uint8_t> b = generate(o);
  o.n_threads = 1;
  const std::vector<uint8_t> c = generate(o);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  o.seed = 8;
  const std::vector<uint8_t> d = generate(o);
  ASSERT_EQ(a.size(), d.size());  // same layout
  EXPECT_NE(a, d);
  auto fa = gguf_file::parse(a.data(), a.size());
  auto fd = gguf_file::parse(d.data(), d.size());
  ASSERT_TRUE(fa.ok() && fd.ok());
  // Every weight tensor changes with the seed (norms too); only rope_freqs (absent here) would not.
  for (const gguf_tensor_info& t : fa->tensors()) {
    const gguf_tensor_info* u = fd->find_tensor(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_NE(std::memcmp(fa->tensor_data(t), fd->tensor_data(*u), t.n_bytes), 0) << t.name;
  }
}

TEST(model_gen, weights_have_the_intended_statistics) {
  const std::vector<uint8_t> bytes = generate(small_options(model_ftype::all_f32));
  auto f = gguf_file::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok());
  const std::vector<float> w = tensor_values(*f, "blk.1.ffn_up.weight");  // 131072 values
  double sum = 0, sq = 0, amax = 0;
  for (float v : w) {
    sum += v;
    sq += static_cast<double>(v) * v;
    amax = std::max(amax, static_cast<double>(std::fabs(v)));
  }
  const double mean = sum / static_cast<double>(w.size());
  const double sd = std::sqrt(sq / static_cast<double>(w.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sd, model_gen_std, 0.02 * model_gen_std);
  EXPECT_LE(amax, 3.47 * model_gen_std);  // the sum of four uniforms is bounded
  EXPECT_GT(amax, 3.0 * model_gen_std);   // ... but reaches the tails
  for (float v : tensor_values(*f, "output_norm.weight")) {
    EXPECT_GT(v, 0.6f);
    EXPECT_LT(v, 1.4f);
  }
  // Same values whatever the file type: the f16 file holds the f32 file's values rounded to half.
  const std::vector<uint8_t> h = generate(small_options(model_ftype::f16));
  auto fh = gguf_file::parse(h.data(), h.size());
  ASSERT_TRUE(fh.ok());
  const std::vector<float> wh = tensor_values(*fh, "blk.1.ffn_up.weight");
  ASSERT_EQ(wh.size(), w.size());
  for (size_t i = 0; i < w.size(); i += 97) EXPECT_EQ(wh[i], cpu::fp16_to_fp32(cpu::fp32_to_fp16(w[i])));
}

TEST(model_gen, llama3_rope_factors_load_into_lime) {
  model_gen_options o = small_options(model_ftype::q8_0);
  o.shape.n_head = 2;  // head_dim 128 -> 64 frequency pairs, as in Llama-3
  o.shape.n_head_kv = 1;
  o.shape.rope_base = 500000.f;
  o.shape.rope_scale = 32.f;
  const std::vector<uint8_t> bytes = generate(o);
  auto f = gguf_file::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.ok());
  const std::vector<float> rf = tensor_values(*f, "rope_freqs.weight");
  ASSERT_EQ(rf.size(), 64u);
  EXPECT_EQ(rf.front(), 1.0f);  // short wavelengths are not scaled
  EXPECT_EQ(rf.back(), 32.0f);  // wavelengths beyond orig_ctx / low_freq_factor are scaled by the full factor
  for (size_t i = 1; i < rf.size(); ++i) EXPECT_GE(rf[i], rf[i - 1]);
  auto m = model::from_gguf(std::move(f.value()));
  ASSERT_TRUE(m.ok()) << m.err().message;
  EXPECT_TRUE(m->hparams().has_rope_factors);
}

TEST(model_gen, fast_k_quants_are_close_to_the_reference_quantizer) {
  const int64_t n = 256 * 64;
  std::vector<float> x(n), back(n);
  model_gen_values(model_gen_stream(5, "q"), 0, n, 0.02f, 0.f, x.data());
  for (tensor_type t : {tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k}) {
    std::vector<uint8_t> fast(tensor_row_bytes(t, n)), ref(tensor_row_bytes(t, n));
    ASSERT_TRUE(model_gen_quantize_fast(t, x.data(), fast.data(), n));
    ASSERT_EQ(cpu::quantize_row(t, x.data(), ref.data(), n), kstatus::ok);
    auto rms = [&](const std::vector<uint8_t>& q) {
      EXPECT_EQ(cpu::dequantize_row(t, q.data(), back.data(), n), kstatus::ok);
      double e = 0;
      for (int64_t i = 0; i < n; ++i) e += (back[i] - x[i]) * static_cast<double>(back[i] - x[i]);
      return std::sqrt(e / static_cast<double>(n));
    };
    const double e_fast = rms(fast), e_ref = rms(ref);
    EXPECT_LE(e_fast, 2.0 * e_ref) << tensor_type_name(t);
    EXPECT_LT(e_fast, 0.1 * 0.02) << tensor_type_name(t);  // well under a tenth of the weights' spread
  }
  EXPECT_FALSE(model_gen_quantize_fast(tensor_type::q4_0, x.data(), back.data(), n));
}

TEST(model_gen, generated_bpe_vocab_tokenizes_and_round_trips) {
  gguf_writer w;
  ASSERT_TRUE(model_gen_bpe_vocab(1000, w).ok());
  auto bytes = w.write_memory();
  ASSERT_TRUE(bytes.ok());
  auto f = gguf_file::parse(bytes->data(), bytes->size());
  ASSERT_TRUE(f.ok());
  auto v = vocab_load(*f);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(v->n_tokens(), 1000);
  EXPECT_EQ(v->kind, vocab_kind::bpe);
  auto tok = tokenizer::create(*v);
  ASSERT_TRUE(tok.ok()) << tok.err().message;
  const std::string text = "Hello world, 123!\n\ttabs and \xc3\xa9t\xc3\xa9";
  const std::vector<int32_t> ids = tok->encode(text, true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), v->bos);
  for (int32_t id : ids) EXPECT_LT(id, 1000);
  EXPECT_EQ(tok->decode(std::vector<int32_t>(ids.begin() + 1, ids.end()), false, false), text);
  EXPECT_FALSE(model_gen_bpe_vocab(100, w).ok());
}

TEST(model_gen, bpe_vocab_of_128256_has_llama3_layout) {
  gguf_writer w;
  ASSERT_TRUE(model_gen_bpe_vocab(128256, w).ok());
  auto bytes = w.write_memory();
  ASSERT_TRUE(bytes.ok());
  auto f = gguf_file::parse(bytes->data(), bytes->size());
  ASSERT_TRUE(f.ok());
  auto v = vocab_load(*f);
  ASSERT_TRUE(v.ok()) << v.err().message;
  ASSERT_EQ(v->n_tokens(), 128256);
  EXPECT_EQ(v->tokens[128000], "<|begin_of_text|>");
  EXPECT_EQ(v->tokens[128009], "<|eot_id|>");
  EXPECT_EQ(v->tokens[128255], "<|reserved_special_token_247|>");
  EXPECT_EQ(v->bos, 128000);
  EXPECT_EQ(v->eos, 128009);
  EXPECT_EQ(v->types[128000], token_attr::control);
  EXPECT_EQ(v->types[127999], token_attr::normal);
  EXPECT_EQ(v->merges.size(), 128000u - 256u);
  std::set<std::string> distinct(v->tokens.begin(), v->tokens.end());
  EXPECT_EQ(distinct.size(), v->tokens.size());
}

TEST(model_gen, bad_shapes_and_vocab_mismatch_are_errors) {
  model_gen_options o = small_options(model_ftype::q4_0);
  o.shape.n_head_kv = 3;
  EXPECT_EQ(model_gen_write_memory(o).err().code, errc::invalid_argument);
  o = small_options(model_ftype::q4_0);
  o.shape.n_embd = 250;
  EXPECT_EQ(model_gen_write_memory(o).err().code, errc::invalid_argument);
  // A vocabulary whose size differs from n_vocab: write one of 400 tokens and point the generator at it.
  gguf_writer vw;
  ASSERT_TRUE(model_gen_bpe_vocab(400, vw).ok());
  const std::string path = ::testing::TempDir() + "lime_model_gen_vocab400.gguf";
  ASSERT_TRUE(vw.write_file(path).ok());
  o = small_options(model_ftype::q4_0);
  o.vocab_path = path;
  auto r = model_gen_write_memory(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  o.shape.n_vocab = 400;
  EXPECT_TRUE(model_gen_write_memory(o).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lime
