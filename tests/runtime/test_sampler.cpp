// Tests for runtime/sampler: greedy, top-k/top-p/min-p exclusion, penalties, the counter-based generator, the
// sampled distribution, and equality with a slow literal implementation of sampler.h's definition.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "kernels/cpu/math.h"
#include "runtime/sampler.h"

namespace lime {
namespace {

constexpr float k_inf = std::numeric_limits<float>::infinity();

sampling_params plain(float temperature) {
  sampling_params p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  return p;
}

int32_t sample(const std::vector<float>& logits, const sampling_params& p, int64_t position,
               const std::vector<int32_t>& history = {}) {
  sampler_scratch s;
  return sample_token(logits.data(), static_cast<int32_t>(logits.size()), p, history.data(),
                      static_cast<int64_t>(history.size()), position, s);
}

// Which tokens can be drawn: at a huge temperature every kept token is about equally likely, so `draws` draws
// show every kept token and never an excluded one.
std::set<int32_t> kept_set(const std::vector<float>& logits, sampling_params p, int draws = 4000) {
  p.temperature = 1e4f;
  sampler_scratch s;
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) {
    seen.insert(sample_token(logits.data(), static_cast<int32_t>(logits.size()), p, nullptr, 0, i, s));
  }
  return seen;
}

std::vector<float> log_probs(std::initializer_list<double> probs) {
  std::vector<float> v;
  for (double q : probs) v.push_back(static_cast<float>(std::log(q)));
  return v;
}

// --- sampler.h's definition, written literally: full stable sort, std::set for distinct history tokens.
int32_t reference_sample(const std::vector<float>& logits, const sampling_params& p,
                         const std::vector<int32_t>& history, int64_t position) {
  const int32_t n = static_cast<int32_t>(logits.size());
  auto clean = [](float x) { return std::isnan(x) ? -k_inf : (x == k_inf ? FLT_MAX : x); };
  std::vector<float> v(logits.size());
  for (int32_t i = 0; i < n; ++i) v[i] = clean(logits[i]);
  const float pen = p.repeat_penalty;
  if (p.repeat_last_n != 0 && pen > 0.0f && pen <= FLT_MAX && pen != 1.0f) {
    const size_t h = history.size();
    const size_t start = (p.repeat_last_n < 0 || static_cast<size_t>(p.repeat_last_n) >= h)
                             ? 0 : h - static_cast<size_t>(p.repeat_last_n);
    std::set<int32_t> distinct(history.begin() + static_cast<std::ptrdiff_t>(start), history.end());
    for (int32_t t : distinct) {
      if (t >= 0 && t < n) v[t] = clean(v[t] > 0.0f ? v[t] / pen : v[t] * pen);
    }
  }
  const float m = *std::max_element(v.begin(), v.end());
  if (m == -k_inf) return 0;
  if (!(p.temperature > 0.0f)) return static_cast<int32_t>(std::find(v.begin(), v.end(), m) - v.begin());

  std::vector<int32_t> sorted(logits.size());
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  const size_t k = (p.top_k > 0 && p.top_k < n) ? static_cast<size_t>(p.top_k) : logits.size();
  std::vector<int32_t> cand(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k));
  size_t len_p = k;
  if (p.top_p < 1.0f) {
    std::vector<int32_t> by_id = cand;
    std::sort(by_id.begin(), by_id.end());
    double z = 0.0;
    for (int32_t id : by_id) z += static_cast<double>(cpu::exp_f32(v[id] - m));
    double cum = 0.0;
    for (size_t i = 0; i < k; ++i) {
      cum += static_cast<double>(cpu::exp_f32(v[cand[i]] - m));
      if (cum >= static_cast<double>(p.top_p) * z) {
        len_p = i + 1;
        break;
      }
    }
  }
  size_t len_m = k;
  if (p.min_p > 0.0f) {
    const float floor = m + static_cast<float>(cpu::log_f64(static_cast<double>(p.min_p)));
    len_m = 1;
    while (len_m < k && v[cand[len_m]] >= floor) ++len_m;
  }
  std::vector<int32_t> kept(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(std::min(len_p, len_m)));
  std::sort(kept.begin(), kept.end());
  std::vector<float> w;
  double total = 0.0;
  for (int32_t id : kept) {
    const float d = v[id] - m;
    w.push_back(d == -k_inf ? 0.0f : cpu::exp_f32(d / p.temperature));
    total += static_cast<double>(w.back());
  }
  const double target = static_cast<double>(rng_uniform(p.seed, static_cast<uint64_t>(position))) * total;
  double cum = 0.0;
  int32_t last = kept[0];
  for (size_t i = 0; i < kept.size(); ++i) {
    if (w[i] <= 0.0f) continue;
    cum += static_cast<double>(w[i]);
    last = kept[i];
    if (cum > target) return kept[i];
  }
  return last;
}

// ------------------------------------------------------------------ greedy

TEST(sampler, greedy_picks_argmax_ties_to_lowest_id) {
  std::vector<float> logits = {0.5f, -1.0f, 2.0f, 3.25f, 1.0f, 3.25f, -k_inf, 3.0f};
  for (float t : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN()}) {
    sampling_params p;  // default truncation settings do not matter for greedy
    p.temperature = t;
    for (int64_t pos : {0, 1, 77}) EXPECT_EQ(sample(logits, p, pos), 3);
  }
  // NaN logits never win; +inf wins.
  std::vector<float> odd = {1.0f, std::numeric_limits<float>::quiet_NaN(), 5.0f, k_inf, 2.0f};
  EXPECT_EQ(sample(odd, plain(0.0f), 0), 3);
  std::vector<float> all_bad = {-k_inf, std::numeric_limits<float>::quiet_NaN(), -k_inf};
  EXPECT_EQ(sample(all_bad, plain(0.0f), 0), 0);
  EXPECT_EQ(sample(all_bad, plain(1.0f), 5), 0);
  std::vector<float> empty;
  EXPECT_EQ(sample(empty, plain(1.0f), 0), -1);
}

TEST(sampler, top_k_1_equals_greedy_for_any_temperature) {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> logits(500);
    for (float& x : logits) x = std::round(nd(gen) * 2.0f) / 2.0f;  // coarse values: ties at the top happen
    const int32_t greedy = sample(logits, plain(0.0f), 0);
    for (float t : {0.05f, 0.8f, 1.5f, 10.0f, 1e6f}) {
      sampling_params p;
      p.temperature = t;
      p.top_k = 1;
      for (int64_t pos = 0; pos < 20; ++pos) {
        p.seed = static_cast<uint64_t>(trial * 1000 + pos);
        ASSERT_EQ(sample(logits, p, pos), greedy) << "trial " << trial << " T " << t;
      }
    }
  }
}

// ------------------------------------------------------------------ the generator

TEST(sampler, rng_uniform_is_in_unit_interval_on_a_24_bit_grid) {
  for (uint64_t seed : {0ull, 1ull, 0xffffffffffffffffull, 0x123456789ull}) {
    for (uint64_t c = 0; c < 20000; ++c) {
      const float u = rng_uniform(seed, c);
      ASSERT_GE(u, 0.0f);
      ASSERT_LT(u, 1.0f);
      const float scaled = u * 16777216.0f;
      ASSERT_EQ(scaled, std::floor(scaled));
    }
  }
  EXPECT_EQ(rng_uniform(5, 9), rng_uniform(5, 9));
  EXPECT_NE(rng_uniform(5, 9), rng_uniform(5, 10));
  EXPECT_NE(rng_uniform(5, 9), rng_uniform(6, 9));
}

double chi_square(const std::vector<int>& counts, double expected) {
  double c2 = 0.0;
  for (int c : counts) c2 += (c - expected) * (c - expected) / expected;
  return c2;
}

TEST(sampler, rng_uniform_is_roughly_uniform) {
  const int n = 100000, bins = 100;  // 99 degrees of freedom: mean 99, sd 14; the bound is very loose
  std::vector<int> by_counter(bins, 0), by_seed(bins, 0), pairs(bins, 0);
  for (int i = 0; i < n; ++i) {
    by_counter[static_cast<size_t>(rng_uniform(42, static_cast<uint64_t>(i)) * bins)]++;
    by_seed[static_cast<size_t>(rng_uniform(static_cast<uint64_t>(i), 3) * bins)]++;
    // Adjacent counters: a 10 x 10 grid of (u_i, u_{i+1}) catches serial correlation.
    const int a = static_cast<int>(rng_uniform(9, static_cast<uint64_t>(i)) * 10);
    const int b = static_cast<int>(rng_uniform(9, static_cast<uint64_t>(i) + 1) * 10);
    pairs[static_cast<size_t>(a * 10 + b)]++;
  }
  EXPECT_LT(chi_square(by_counter, n / bins), 200.0);
  EXPECT_LT(chi_square(by_seed, n / bins), 200.0);
  EXPECT_LT(chi_square(pairs, n / bins), 200.0);
}

TEST(sampler, same_seed_and_position_same_token_and_positions_vary) {
  std::vector<float> logits(16, 0.0f);  // uniform over 16 tokens
  sampling_params p = plain(1.0f);
  p.seed = 1234;
  std::map<int32_t, int> counts;
  std::vector<int32_t> seq_a, seq_b;
  for (int64_t pos = 0; pos < 1600; ++pos) {
    const int32_t t = sample(logits, p, pos);
    EXPECT_EQ(t, sample(logits, p, pos));  // pure function of the inputs
    counts[t]++;
    seq_a.push_back(t);
  }
  EXPECT_EQ(counts.size(), 16u);
  for (const auto& kv : counts) {
    EXPECT_GT(kv.second, 40) << "token " << kv.first;  // expected 100 each
    EXPECT_LT(kv.second, 180) << "token " << kv.first;
  }
  p.seed = 1235;
  int same = 0;
  for (int64_t pos = 0; pos < 1600; ++pos) {
    seq_b.push_back(sample(logits, p, pos));
    same += seq_b.back() == seq_a[static_cast<size_t>(pos)];
  }
  EXPECT_LT(same, 250);  // about 100 expected by chance
  for (uint64_t seed = 1; seed < 50; ++seed) {
    p.seed = seed;
    EXPECT_EQ(sample(logits, p, 99), sample(logits, p, 99));
  }
}

TEST(sampler, seed_from_entropy_varies) {
  std::set<uint64_t> seeds;
  for (int i = 0; i < 8; ++i) seeds.insert(seed_from_entropy());
  EXPECT_GE(seeds.size(), 7u);
}

// ------------------------------------------------------------------ distribution

// Draws over many seeds at one position; the frequencies must match the given probabilities.
void expect_distribution(const std::vector<float>& logits, const sampling_params& base,
                         const std::vector<double>& want, int n_draws = 200000) {
  std::vector<int> counts(logits.size(), 0);
  sampling_params p = base;
  sampler_scratch s;
  for (int i = 0; i < n_draws; ++i) {
    p.seed = static_cast<uint64_t>(i) * 7919u + 1u;
    const int32_t t = sample_token(logits.data(), static_cast<int32_t>(logits.size()), p, nullptr, 0, 11, s);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, static_cast<int32_t>(logits.size()));
    counts[static_cast<size_t>(t)]++;
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    const double f = static_cast<double>(counts[i]) / n_draws;
    const double sigma = std::sqrt(want[i] * (1.0 - want[i]) / n_draws);
    EXPECT_NEAR(f, want[i], 5.0 * sigma + 1e-4) << "token " << i;
  }
}

std::vector<double> softmax_ref(const std::vector<float>& logits, double t, size_t keep_top = 0) {
  std::vector<double> e(logits.size(), 0.0);
  std::vector<size_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  const size_t k = keep_top ? keep_top : logits.size();
  double z = 0.0;
  for (size_t i = 0; i < k; ++i) z += e[order[i]] = std::exp(logits[order[i]] / t);
  for (double& x : e) x /= z;
  return e;
}

TEST(sampler, empirical_distribution_matches_softmax_over_temperature) {
  const std::vector<float> logits = {1.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f};
  for (float t : {0.7f, 1.0f, 2.5f}) {
    expect_distribution(logits, plain(t), softmax_ref(logits, t));
  }
  // top_k = 3 renormalizes over the three best.
  sampling_params p = plain(1.3f);
  p.top_k = 3;
  expect_distribution(logits, p, softmax_ref(logits, 1.3, 3));
}

// ------------------------------------------------------------------ truncation

TEST(sampler, top_k_keeps_exactly_the_k_best) {
  const std::vector<float> logits = {0.1f, 3.0f, 2.0f, -1.0f, 2.5f, 0.0f, 1.0f, 2.0f};
  sampling_params p = plain(1.0f);
  p.top_k = 3;
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{1, 2, 4}));  // the tie at 2.0 goes to the lower id
  p.top_k = 4;
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{1, 2, 4, 7}));
  p.top_k = 100;  // more than the vocabulary: off
  EXPECT_EQ(kept_set(logits, p).size(), logits.size());
}

TEST(sampler, top_p_keeps_the_smallest_prefix_reaching_p) {
  const std::vector<float> logits = log_probs({0.15, 0.5, 0.05, 0.3});
  sampling_params p = plain(1.0f);
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.8
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{1, 3}));
  p.top_p = 0.9f;  // 0.8 < 0.9 <= 0.95
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0, 1, 3}));
  p.top_p = 0.3f;  // the first token alone already reaches it
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{1}));
  p.top_p = 0.0f;  // at least one token stays
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{1}));
  p.top_p = 0.99f;
  EXPECT_EQ(kept_set(logits, p).size(), 4u);
}

TEST(sampler, top_p_uses_probabilities_after_top_k) {
  // Two tokens with 0.4 and 0.3, and 30 tokens sharing 0.3. Over the whole vocabulary 0.4 < 0.5, so top_p = 0.5
  // keeps two tokens; after top_k = 2 the first has 0.4 / 0.7 > 0.5 and stays alone.
  std::vector<float> logits = log_probs({0.4, 0.3});
  for (int i = 0; i < 30; ++i) logits.push_back(static_cast<float>(std::log(0.01)));
  sampling_params p = plain(1.0f);
  p.top_p = 0.5f;
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0, 1}));
  p.top_k = 2;
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0}));
}

TEST(sampler, min_p_keeps_tokens_above_a_fraction_of_the_best) {
  const std::vector<float> logits = log_probs({0.5, 0.05, 0.015, 0.03, 0.4});
  sampling_params p = plain(1.0f);
  p.min_p = 0.05f;  // floor 0.025: drops token 2
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0, 1, 3, 4}));
  p.min_p = 0.2f;  // floor 0.1
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0, 4}));
  p.min_p = 2.0f;  // nothing reaches the floor: the best token stays
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0}));
  // min_p with top_p: the shorter of the two prefixes.
  p.min_p = 0.05f;
  p.top_p = 0.85f;  // 0.5 + 0.4 reaches it
  EXPECT_EQ(kept_set(logits, p), (std::set<int32_t>{0, 4}));
}

TEST(sampler, repetition_penalty_changes_argmax) {
  std::vector<float> logits = {2.0f, 1.9f, -0.5f, 1.7f};
  sampling_params p = plain(0.0f);
  p.repeat_penalty = 1.1f;
  p.repeat_last_n = 64;
  EXPECT_EQ(sample(logits, p, 5, {}), 0);
  EXPECT_EQ(sample(logits, p, 5, {0}), 1);  // 2.0 / 1.1 = 1.818 < 1.9
  // A token repeated in the window is penalized once: 1.818 still beats 1.7 once 1.9 is penalized too.
  EXPECT_EQ(sample(logits, p, 5, {0, 0, 1, 0, 0}), 0);
  // Negative logits are multiplied: -0.5 * 1.1 = -0.55, so a penalty never lifts a token.
  logits = {-0.5f, -0.52f};
  EXPECT_EQ(sample(logits, p, 5, {0}), 1);
  // The window: token 0 older than the last 2 history tokens is not penalized; -1 means the whole history.
  logits = {2.0f, 1.9f, -0.5f, 1.7f};
  p.repeat_last_n = 2;
  EXPECT_EQ(sample(logits, p, 5, {0, 2, 3}), 0);
  p.repeat_last_n = -1;
  EXPECT_EQ(sample(logits, p, 5, {0, 2, 3}), 1);
  p.repeat_last_n = 0;
  EXPECT_EQ(sample(logits, p, 5, {0, 2, 3}), 0);
  // Out-of-range history ids are ignored; the logits themselves are never modified.
  p.repeat_last_n = 64;
  const std::vector<float> before = logits;
  EXPECT_EQ(sample(logits, p, 5, {-3, 4, 1000000}), 0);
  EXPECT_EQ(logits, before);
}

// ------------------------------------------------------------------ the definition, every path

struct random_case {
  std::vector<float> logits;
  std::vector<int32_t> history;
  sampling_params p;
};

random_case make_case(std::mt19937& gen, int32_t n) {
  random_case c;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 99);
  const float scale = std::vector<float>{0.3f, 2.0f, 8.0f}[static_cast<size_t>(pick(gen) % 3)];
  const bool coarse = pick(gen) < 40;  // many equal values: ties everywhere
  c.logits.resize(static_cast<size_t>(n));
  for (float& x : c.logits) {
    x = nd(gen) * scale;
    if (coarse) x = std::round(x * 2.0f) / 2.0f;
    const int r = pick(gen);
    if (r == 0) x = -k_inf;
    if (r == 1 && pick(gen) < 10) x = std::numeric_limits<float>::quiet_NaN();
  }
  if (pick(gen) < 3) c.logits[static_cast<size_t>(pick(gen)) % c.logits.size()] = k_inf;
  std::uniform_int_distribution<int32_t> tok(-2, n + 2);
  c.history.resize(static_cast<size_t>(pick(gen)));
  for (int32_t& t : c.history) t = tok(gen);
  sampling_params& p = c.p;
  p.temperature = std::vector<float>{0.0f, 0.3f, 0.8f, 1.0f, 2.0f}[static_cast<size_t>(pick(gen) % 5)];
  p.top_k = std::vector<int32_t>{0, 1, 5, 40, n / 2, n - 1, n, n + 5}[static_cast<size_t>(pick(gen) % 8)];
  p.top_p = std::vector<float>{1.0f, 0.95f, 0.5f, 0.9999f, 0.0f}[static_cast<size_t>(pick(gen) % 5)];
  p.min_p = std::vector<float>{0.0f, 0.05f, 0.5f, 1.5f}[static_cast<size_t>(pick(gen) % 4)];
  p.repeat_penalty = std::vector<float>{1.0f, 1.1f, 1.5f, 0.9f}[static_cast<size_t>(pick(gen) % 4)];
  p.repeat_last_n = std::vector<int32_t>{64, 0, -1, 3}[static_cast<size_t>(pick(gen) % 4)];
  p.seed = gen();
  return c;
}

TEST(sampler, equals_the_literal_definition_on_random_cases) {
  std::mt19937 gen(2024);
  sampler_scratch s;  // shared on purpose
  int checked = 0;
  for (int32_t n : {1, 2, 3, 17, 100, 1000, 20000}) {
    const int trials = n >= 20000 ? 40 : 150;
    for (int trial = 0; trial < trials; ++trial) {
      random_case c = make_case(gen, n);
      for (int64_t pos : {0, 1, 1000}) {
        const int32_t got = sample_token(c.logits.data(), n, c.p, c.history.data(),
                                         static_cast<int64_t>(c.history.size()), pos, s);
        const int32_t want = reference_sample(c.logits, c.p, c.history, pos);
        ASSERT_EQ(got, want) << "n=" << n << " trial=" << trial << " pos=" << pos << " T=" << c.p.temperature
                             << " top_k=" << c.p.top_k << " top_p=" << c.p.top_p << " min_p=" << c.p.min_p;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 2000);
}

TEST(sampler, top_p_over_a_flat_large_vocab_equals_the_definition) {
  // Flat logits make the whole-vocabulary top-p path widen its floor (or sort everything).
  std::mt19937 gen(5);
  for (float spread : {4.0f, 12.0f, 40.0f, 200.0f}) {
    std::uniform_real_distribution<float> ud(0.0f, spread);
    std::vector<float> logits(30000);
    for (float& x : logits) x = ud(gen);
    for (float top_p : {0.5f, 0.95f, 0.9999f}) {
      sampling_params p = plain(1.0f);
      p.top_p = top_p;
      for (int64_t pos = 0; pos < 4; ++pos) {
        ASSERT_EQ(sample(logits, p, pos), reference_sample(logits, p, {}, pos)) << spread << " " << top_p;
      }
    }
  }
}

TEST(sampler, result_does_not_depend_on_scratch_history) {
  std::mt19937 gen(99);
  std::vector<random_case> cases;
  for (int32_t n : {5, 3000, 50, 70000, 1, 400}) cases.push_back(make_case(gen, n));
  std::vector<int32_t> fresh;
  for (const random_case& c : cases) fresh.push_back(sample(c.logits, c.p, 17, c.history));
  for (int order = 0; order < 3; ++order) {
    sampler_scratch s;
    // Dirty the scratch with a large, different vocabulary first.
    random_case big = make_case(gen, 100000);
    (void)sample_token(big.logits.data(), 100000, big.p, nullptr, 0, 3, s);
    for (size_t j = 0; j < cases.size(); ++j) {
      const size_t i = order == 1 ? cases.size() - 1 - j : (order == 2 ? (j * 5) % cases.size() : j);
      const random_case& c = cases[i];
      EXPECT_EQ(sample_token(c.logits.data(), static_cast<int32_t>(c.logits.size()), c.p, c.history.data(),
                             static_cast<int64_t>(c.history.size()), 17, s),
                fresh[i])
          << "case " << i << " order " << order;
    }
  }
}

TEST(sampler, speed_on_a_128k_vocab) {
  std::mt19937 gen(1);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(128256);
  for (float& x : logits) x = nd(gen);
  std::vector<int32_t> history(200);
  for (int32_t& t : history) t = static_cast<int32_t>(gen() % 128256);
  sampler_scratch s;
  auto time_it = [&](const char* name, sampling_params p) {
    p.repeat_penalty = 1.1f;
    (void)sample_token(logits.data(), 128256, p, history.data(), 200, 0, s);  // warm-up
    const int reps = 20;
    const auto t0 = std::chrono::steady_clock::now();
    int64_t acc = 0;
    for (int i = 0; i < reps; ++i) acc += sample_token(logits.data(), 128256, p, history.data(), 200, i, s);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("sampler | n_vocab 128256 | %-28s | %.3f ms/token\n", name, ms / reps);
    EXPECT_GE(acc, 0);
  };
  time_it("defaults (k40 p.95 minp.05)", sampling_params{});
  sampling_params p = sampling_params{};
  p.top_k = 0;
  time_it("top_k off, top_p + min_p", p);
  p.min_p = 0.0f;
  time_it("top_k off, top_p only", p);
  time_it("temperature only", plain(0.8f));
  time_it("greedy", plain(0.0f));
}

}  // namespace
}  // namespace lime
