// pipeline_stage: chained stages equal one stage bitwise, staged generation equals session::generate, eog masking,
// KV release and limits, input validation; stage_weight_bytes.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "runtime/session.h"
#include "runtime/stage.h"
#include "tests/tiny_model.h"

namespace lime {
namespace {

vocab tiny_vocab(int32_t n_vocab, std::vector<int32_t> eog = {2}) {
  vocab v;
  for (int32_t i = 0; i < n_vocab; ++i) v.tokens.push_back("t" + std::to_string(i));
  v.eos = eog.empty() ? -1 : eog[0];
  v.end_of_generation_ids = std::move(eog);
  return v;
}

std::vector<int32_t> tokens_for(int32_t seed, int n, int32_t n_vocab) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((seed * 31 + i * 17 + 5) % n_vocab));
  return t;
}

stage_config stage_cfg(layer_range r, int32_t threads, int32_t max_blocks = 64) {
  stage_config c;
  c.range = r;
  c.n_threads = threads;
  c.kv_block_size = 16;
  c.kv_max_blocks = max_blocks;
  return c;
}

// Stages covering [0, n_layer) cut at `cuts`.
std::vector<std::unique_ptr<pipeline_stage>> make_chain(const model& m, const vocab& v, const std::vector<int32_t>& cuts,
                                                        int32_t threads) {
  std::vector<std::unique_ptr<pipeline_stage>> chain;
  int32_t lo = 0;
  std::vector<int32_t> ends = cuts;
  ends.push_back(m.hparams().n_layer);
  for (int32_t hi : ends) {
    auto s = pipeline_stage::create(m, v, stage_cfg({lo, hi}, threads));
    EXPECT_TRUE(s.ok()) << s.err().message;
    chain.push_back(std::move(s.value()));
    lo = hi;
  }
  return chain;
}

// Runs a batch through the chain, handing each stage's activations to the next as batch.embd.
result<std::vector<sampled_row>> run_chain(std::vector<std::unique_ptr<pipeline_stage>>& chain, micro_batch b,
                                           const std::vector<row_sampling>& sampling) {
  std::vector<float> hidden;
  std::vector<sampled_row> sampled;
  for (size_t i = 0; i < chain.size(); ++i) {
    if (i > 0) {
      b.tokens.clear();
      b.embd = hidden;
    }
    LIME_TRY_VOID(chain[i]->run(b, sampling, &hidden, &sampled));
    if (i + 1 < chain.size()) {
      EXPECT_EQ(hidden.size(), b.size() * static_cast<size_t>(64));
    }
  }
  return sampled;
}

sampling_params temp_params(uint64_t seed) {
  sampling_params p;
  p.temperature = 0.9f;
  p.top_k = 30;
  p.top_p = 0.95f;
  p.min_p = 0.02f;
  p.repeat_penalty = 1.15f;
  p.seed = seed;
  return p;
}

struct gen_result {
  std::vector<int32_t> tokens;  // sampled, the eog one excluded (like session's on_token)
  uint64_t checksum = 0;
  bool ended_by_eog = false;
};

// session::generate's loop, driven through a chain of stages; the prompt is prefilled in chunks of `chunk`.
gen_result generate_staged(std::vector<std::unique_ptr<pipeline_stage>>& chain, const vocab& v,
                           const std::vector<int32_t>& prompt, const sampling_params& sp, int32_t n_predict,
                           size_t chunk, bool ignore_eog = false) {
  gen_result g;
  std::vector<int32_t> history;
  std::vector<sampled_row> out;
  micro_batch b;
  for (size_t s = 0; s < prompt.size(); s += chunk) {
    b.clear();
    const size_t e = std::min(prompt.size(), s + chunk);
    for (size_t i = s; i < e; ++i) b.add(prompt[i], static_cast<int32_t>(i), 7, i + 1 == prompt.size());
    history.insert(history.end(), prompt.begin() + static_cast<std::ptrdiff_t>(s), prompt.begin() + static_cast<std::ptrdiff_t>(e));
    std::vector<row_sampling> rs;
    if (e == prompt.size()) rs.push_back({sp, g.checksum, history, ignore_eog});
    auto r = run_chain(chain, b, rs);
    EXPECT_TRUE(r.ok()) << r.err().message;
    out = r.ok() ? r.value() : std::vector<sampled_row>{};
  }
  for (int32_t n = 0; n < n_predict; ++n) {
    EXPECT_EQ(out.size(), 1u);
    if (out.size() != 1) break;
    EXPECT_EQ(out[0].seq_id, 7);
    EXPECT_EQ(out[0].position, static_cast<int32_t>(history.size()));
    g.checksum = out[0].checksum;
    const int32_t id = out[0].token;
    if (v.is_end_of_generation(id)) { g.ended_by_eog = true; break; }
    g.tokens.push_back(id);
    if (n + 1 == n_predict) break;
    b.clear();
    b.add(id, static_cast<int32_t>(history.size()), 7, true);
    history.push_back(id);
    auto r = run_chain(chain, b, {{sp, g.checksum, history, ignore_eog}});
    EXPECT_TRUE(r.ok()) << r.err().message;
    out = r.ok() ? r.value() : std::vector<sampled_row>{};
  }
  return g;
}

gen_result generate_session(const model& m, const vocab& v, const std::vector<int32_t>& prompt, const sampling_params& sp,
                            int32_t n_predict, bool ignore_eog = false) {
  session_config sc;
  sc.n_ctx = 256;
  sc.n_threads = 1;
  auto s = session::create(m, v, sc);
  EXPECT_TRUE(s.ok()) << s.err().message;
  gen_result g;
  auto st = s.value()->generate(prompt, sp, n_predict, [&](int32_t id) { g.tokens.push_back(id); return true; }, nullptr, ignore_eog);
  EXPECT_TRUE(st.ok()) << st.err().message;
  g.checksum = st->checksum;
  g.ended_by_eog = st->reason == finish_reason::end_of_generation;
  return g;
}

test::tiny_spec spec4() {
  test::tiny_spec s;
  s.n_layer = 4;
  return s;
}

TEST(stage, split_chain_samples_bitwise_like_one_stage) {
  auto m = test::make_tiny_model(spec4());
  ASSERT_TRUE(m.ok()) << m.err().message;
  const int32_t nv = m->hparams().n_vocab;
  const vocab v = tiny_vocab(nv, {});  // no eog: every step samples
  // Three sequences, different prompt lengths and sampling; step 0 prefills all, later steps decode all.
  auto record = [&](std::vector<std::unique_ptr<pipeline_stage>> chain) {
    std::vector<std::vector<int32_t>> hist = {tokens_for(1, 9, nv), tokens_for(2, 3, nv), tokens_for(3, 14, nv)};
    std::vector<uint64_t> sum(3, 0);
    std::vector<sampled_row> all;
    micro_batch b;
    for (int step = 0; step < 8; ++step) {
      b.clear();
      std::vector<row_sampling> rs;
      for (size_t s = 0; s < hist.size(); ++s) {
        const size_t from = step == 0 ? 0 : hist[s].size() - 1;
        for (size_t i = from; i < hist[s].size(); ++i)
          b.add(hist[s][i], static_cast<int32_t>(i), static_cast<int32_t>(s + 20), i + 1 == hist[s].size());
        sampling_params p = s == 1 ? sampling_params{} : temp_params(100 + s);
        if (s == 1) p.temperature = 0.0f;  // greedy
        rs.push_back({p, sum[s], hist[s], false});
      }
      auto r = run_chain(chain, b, rs);
      EXPECT_TRUE(r.ok()) << r.err().message;
      if (!r.ok()) break;
      EXPECT_EQ(r->size(), 3u);
      for (size_t s = 0; s < r->size(); ++s) {
        const sampled_row& o = (*r)[s];
        EXPECT_EQ(o.seq_id, static_cast<int32_t>(s + 20));
        EXPECT_EQ(o.position, static_cast<int32_t>(hist[s].size()));
        sum[s] = o.checksum;
        hist[s].push_back(o.token);
        all.push_back(o);
      }
    }
    return all;
  };
  const auto whole = record(make_chain(*m, v, {}, 1));
  ASSERT_EQ(whole.size(), 24u);
  for (const auto& cuts : std::vector<std::vector<int32_t>>{{1}, {2}, {3}, {1, 3}}) {
    const auto split = record(make_chain(*m, v, cuts, 2));
    ASSERT_EQ(split.size(), whole.size());
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(split[i].token, whole[i].token) << "row " << i << " cut " << cuts[0];
      EXPECT_EQ(split[i].checksum, whole[i].checksum) << "row " << i << " cut " << cuts[0];
    }
  }
}

TEST(stage, staged_generation_equals_session_generate) {
  auto m = test::make_tiny_model(spec4());
  ASSERT_TRUE(m.ok());
  const int32_t nv = m->hparams().n_vocab;
  const vocab v = tiny_vocab(nv, {2});
  const auto prompt = tokens_for(4, 11, nv);
  sampling_params greedy;
  greedy.temperature = 0.0f;
  greedy.repeat_penalty = 1.2f;
  for (const sampling_params& sp : {greedy, temp_params(7), temp_params(8)}) {
    const gen_result ref = generate_session(*m, v, prompt, sp, 24);
    EXPECT_TRUE(!ref.tokens.empty() || ref.ended_by_eog);
    for (const auto& cuts : std::vector<std::vector<int32_t>>{{}, {2}, {1, 3}}) {
      auto chain = make_chain(*m, v, cuts, 2);
      const gen_result got = generate_staged(chain, v, prompt, sp, 24, 4);
      EXPECT_EQ(got.tokens, ref.tokens) << "temperature " << sp.temperature << " stages " << cuts.size() + 1;
      EXPECT_EQ(got.checksum, ref.checksum);
      EXPECT_EQ(got.ended_by_eog, ref.ended_by_eog);
    }
  }
}

TEST(stage, ignore_eog_never_samples_an_eog_id_and_keeps_the_raw_checksum) {
  auto m = test::make_tiny_model(spec4());
  ASSERT_TRUE(m.ok());
  const int32_t nv = m->hparams().n_vocab;
  std::vector<int32_t> even;
  for (int32_t i = 0; i < nv; i += 2) even.push_back(i);
  const vocab v = tiny_vocab(nv, even);  // half the vocabulary ends a generation
  auto stage = pipeline_stage::create(*m, v, stage_cfg({0, m->hparams().n_layer}, 2));
  ASSERT_TRUE(stage.ok());
  // One prompt token per sequence, 40 sequences with different seeds, once without and once with the mask.
  micro_batch b;
  std::vector<row_sampling> plain, masked;
  for (int32_t s = 0; s < 40; ++s) {
    b.add(tokens_for(s, 1, nv)[0], 0, s, true);
    plain.push_back({temp_params(static_cast<uint64_t>(s)), 5, {b.tokens.back()}, false});
    masked.push_back(plain.back());
    masked.back().ignore_eog = true;
  }
  std::vector<sampled_row> a, c;
  ASSERT_TRUE(stage.value()->run(b, plain, nullptr, &a).ok());
  ASSERT_TRUE(stage.value()->run(b, masked, nullptr, &c).ok());  // same positions again: rewrites the same KV rows
  ASSERT_EQ(a.size(), 40u);
  ASSERT_EQ(c.size(), 40u);
  int eog_without_mask = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    eog_without_mask += v.is_end_of_generation(a[i].token) ? 1 : 0;
    EXPECT_FALSE(v.is_end_of_generation(c[i].token)) << "row " << i;
    EXPECT_EQ(a[i].checksum, c[i].checksum) << "the checksum steps over the unmasked logits";
  }
  EXPECT_GT(eog_without_mask, 0) << "the test needs rows that would sample an eog id";
  // And through the session: ignore_eog generation equals the staged one.
  const auto prompt = tokens_for(9, 6, nv);
  const gen_result ref = generate_session(*m, v, prompt, temp_params(3), 16, true);
  auto chain = make_chain(*m, v, {2}, 2);
  const gen_result got = generate_staged(chain, v, prompt, temp_params(3), 16, 6, true);
  EXPECT_EQ(ref.tokens.size(), 16u);
  EXPECT_EQ(got.tokens, ref.tokens);
  EXPECT_EQ(got.checksum, ref.checksum);
}

TEST(stage, release_frees_blocks_and_a_full_pool_is_out_of_memory) {
  auto m = test::make_tiny_model(spec4());
  ASSERT_TRUE(m.ok());
  const vocab v = tiny_vocab(m->hparams().n_vocab);
  auto st = pipeline_stage::create(*m, v, stage_cfg({0, 2}, 1, 4));
  ASSERT_TRUE(st.ok());
  pipeline_stage& s = *st.value();
  EXPECT_FALSE(s.is_last());
  EXPECT_EQ(s.kv_blocks_limit(), 4);
  EXPECT_EQ(s.kv_block_bytes(), 2ull * 2 * 16 * static_cast<uint64_t>(m->hparams().n_embd_kv()) * 4);
  micro_batch b;
  for (int32_t i = 0; i < 20; ++i) b.add(i % 7, i, 1, false);  // 2 blocks of 16
  for (int32_t i = 0; i < 5; ++i) b.add(i % 7, i, 2, false);   // 1 block
  std::vector<float> hidden;
  ASSERT_TRUE(s.run(b, {}, &hidden, nullptr).ok());
  EXPECT_EQ(s.kv_blocks_in_use(), 3);
  // Two more blocks would exceed the limit of 4: out_of_memory, nothing reserved.
  micro_batch big;
  for (int32_t i = 0; i < 17; ++i) big.add(3, i, 3, false);
  auto r = s.run(big, {}, &hidden, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::out_of_memory);
  EXPECT_EQ(s.kv_blocks_in_use(), 3);
  s.release(1);
  EXPECT_EQ(s.kv_blocks_in_use(), 1);
  s.release(12345);  // unknown: ignored
  EXPECT_EQ(s.kv_blocks_in_use(), 1);
  ASSERT_TRUE(s.run(big, {}, &hidden, nullptr).ok());  // fits now
  EXPECT_EQ(s.kv_blocks_in_use(), 3);
  s.release_all();
  EXPECT_EQ(s.kv_blocks_in_use(), 0);
  // The stage still works after release_all, and gives the same activations as before for the same input.
  const std::vector<float> before = hidden;
  ASSERT_TRUE(s.run(big, {}, &hidden, nullptr).ok());
  EXPECT_EQ(hidden, before);
}

TEST(stage, invalid_inputs_are_errors) {
  auto m = test::make_tiny_model(spec4());
  ASSERT_TRUE(m.ok());
  const int32_t nl = m->hparams().n_layer;
  const vocab v = tiny_vocab(m->hparams().n_vocab);
  for (layer_range r : {layer_range{0, 0}, layer_range{2, 1}, layer_range{-1, 2}, layer_range{0, nl + 1}}) {
    auto s = pipeline_stage::create(*m, v, stage_cfg(r, 1));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::invalid_argument);
  }
  auto no_blocks = pipeline_stage::create(*m, v, stage_cfg({0, nl}, 1, 0));
  ASSERT_FALSE(no_blocks.ok());
  EXPECT_EQ(no_blocks.err().code, errc::invalid_argument);

  auto last = pipeline_stage::create(*m, v, stage_cfg({2, nl}, 1));
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last.value()->is_last());
  micro_batch b;
  b.add(1, 0, 0, true);
  b.add(2, 1, 0, false);
  b.add(3, 2, 0, true);
  b.embd.assign(3 * static_cast<size_t>(m->hparams().n_embd), 0.25f);
  std::vector<sampled_row> out;
  const row_sampling one{};
  for (size_t n : {0u, 1u, 3u}) {  // two rows want logits
    auto r = last.value()->run(b, std::vector<row_sampling>(n, one), nullptr, &out);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
    EXPECT_EQ(last.value()->kv_blocks_in_use(), 0) << "a rejected batch reserves nothing";
  }
  auto no_out = last.value()->run(b, {one, one}, nullptr, nullptr);
  EXPECT_FALSE(no_out.ok());
  micro_batch short_embd = b;
  short_embd.embd.pop_back();
  auto bad_embd = last.value()->run(short_embd, {one, one}, nullptr, &out);
  ASSERT_FALSE(bad_embd.ok());
  EXPECT_EQ(bad_embd.err().code, errc::invalid_argument);
  ASSERT_TRUE(last.value()->run(b, {one, one}, nullptr, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].position, 1);
  EXPECT_EQ(out[1].position, 3);

  // A stage before the last ignores sampling entries, whatever their number.
  auto first = pipeline_stage::create(*m, v, stage_cfg({0, 2}, 1));
  ASSERT_TRUE(first.ok());
  std::vector<float> hidden;
  ASSERT_TRUE(first.value()->run(b, std::vector<row_sampling>(5, one), &hidden, &out).ok());
  EXPECT_EQ(hidden.size(), 3 * static_cast<size_t>(m->hparams().n_embd));
  EXPECT_TRUE(out.empty());
  micro_batch bad_token = b;
  bad_token.tokens[1] = m->hparams().n_vocab;
  auto r = first.value()->run(bad_token, {}, &hidden, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
}

TEST(stage, weight_bytes_of_a_split_add_up) {
  for (bool tied : {false, true}) {
    test::tiny_spec sp = spec4();
    sp.tied = tied;
    auto m = test::make_tiny_model(sp);
    ASSERT_TRUE(m.ok());
    const int32_t nl = m->hparams().n_layer;
    EXPECT_EQ(stage_weight_bytes(*m, {0, nl}), m->weight_bytes());
    for (int32_t k = 1; k < nl; ++k) {
      const uint64_t sum = stage_weight_bytes(*m, {0, k}) + stage_weight_bytes(*m, {k, nl});
      // Tied: both ends hold token_embd (the first to embed, the last as the output head).
      EXPECT_EQ(sum, m->weight_bytes() + (tied ? m->tok_embd().n_bytes : 0)) << "cut " << k << " tied " << tied;
      EXPECT_GT(stage_weight_bytes(*m, {0, k}), m->tok_embd().n_bytes);
    }
    EXPECT_EQ(stage_weight_bytes(*m, {1, 2}) + stage_weight_bytes(*m, {2, 3}), stage_weight_bytes(*m, {1, 3}));
  }
}

}  // namespace
}  // namespace lime
