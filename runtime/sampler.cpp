// sample_token: penalties -> top-k -> top-p -> min-p -> temperature -> counter-based draw, as defined in
// sampler.h. Sorting uses a strict total order and every sum is sequential, so the result is reproducible.
#include "runtime/sampler.h"

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <limits>
#include <random>

#include "kernels/cpu/math.h"

namespace lime {

namespace {

constexpr float k_neg_inf = -std::numeric_limits<float>::infinity();

// NaN -> -inf and +inf -> FLT_MAX: keeps the order total and v - max finite or -inf.
inline float sanitize(float x) {
  if (x != x) return k_neg_inf;
  if (x > FLT_MAX) return FLT_MAX;
  return x;
}

// The sorted order of sampler.h: value descending, then id ascending. A strict total order on sanitized values.
struct sorted_before {
  const float* v;
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

inline uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ull;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z;
}

// Step 1 of sampler.h: each distinct in-range token of the window is penalized once. False when it is off.
bool apply_penalties(float* v, int32_t n, const sampling_params& p, const int32_t* history, int64_t n_history,
                     std::vector<int32_t>& hist) {
  const float penalty = p.repeat_penalty;
  if (p.repeat_last_n == 0 || !(penalty > 0.0f && penalty <= FLT_MAX) || penalty == 1.0f) return false;
  if (history == nullptr || n_history <= 0) return false;
  const int64_t window = p.repeat_last_n < 0 ? n_history : std::min<int64_t>(p.repeat_last_n, n_history);
  hist.assign(history + (n_history - window), history + n_history);
  std::sort(hist.begin(), hist.end());
  hist.erase(std::unique(hist.begin(), hist.end()), hist.end());
  for (int32_t t : hist) {
    if (t < 0 || t >= n) continue;
    const float x = v[t];
    v[t] = sanitize(x > 0.0f ? x / penalty : x * penalty);
  }
  return true;
}

// The first k tokens of the sorted order, into ids (sorted). 0 < k < n.
void select_top_k(const float* v, int32_t n, int32_t k, std::vector<int32_t>& ids) {
  const sorted_before before{v};
  if (static_cast<int64_t>(k) * 16 <= n) {
    // A heap of the best k so far with the worst on top: one comparison for most tokens of a large vocab.
    ids.resize(static_cast<size_t>(k));
    for (int32_t i = 0; i < k; ++i) ids[static_cast<size_t>(i)] = i;
    std::make_heap(ids.begin(), ids.end(), before);
    float worst = v[ids.front()];
    for (int32_t i = k; i < n; ++i) {
      if (v[i] < worst || !before(i, ids.front())) continue;
      std::pop_heap(ids.begin(), ids.end(), before);
      ids.back() = i;
      std::push_heap(ids.begin(), ids.end(), before);
      worst = v[ids.front()];
    }
  } else {
    ids.resize(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
    std::nth_element(ids.begin(), ids.begin() + k, ids.end(), before);
    ids.resize(static_cast<size_t>(k));
  }
  std::sort(ids.begin(), ids.end(), before);
}

inline float prob_unnorm(float v, float m) { return cpu::exp_f32(v - m); }

// Z of step 4 over every token (ascending id order); e[i] = exp_f32(v[i] - m) is kept for the scans.
double sum_exp_all(const float* v, int32_t n, float m, std::vector<float>& e) {
  e.resize(static_cast<size_t>(n));
  double z = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    e[static_cast<size_t>(i)] = prob_unnorm(v[i], m);
    z += static_cast<double>(e[static_cast<size_t>(i)]);
  }
  return z;
}

// The top-p scan of step 4 over ids[0, len) (a prefix of the sorted order), with e[id] = exp_f32(v[id] - m):
// the kept length, or 0 when the running sum never reaches target there.
size_t top_p_prefix(const float* e, const std::vector<int32_t>& ids, size_t len, double target) {
  double cum = 0.0;
  for (size_t i = 0; i < len; ++i) {
    cum += static_cast<double>(e[ids[i]]);
    if (cum >= target) return i + 1;
  }
  return 0;
}

// Top-p alone over the whole vocabulary without sorting all of it. A histogram of the mass by distance below
// the max (bins of 1/4 logit) gives a logit floor above which the target mass most likely lies; the tokens
// above the floor (always a prefix of the sorted order) are sorted and scanned, and the floor drops to -inf if
// the scan falls short. The sorted scan alone decides, so the result equals a scan of the fully sorted vocabulary.
void top_p_whole_vocab(const float* v, const float* e, int32_t n, float m, double target,
                       std::vector<int32_t>& ids) {
  constexpr int k_bins = 160;          // 40 logits below the max; e^-40 is far below anything top_p can need
  constexpr float k_bins_per_logit = 4.0f;
  double mass[k_bins + 1] = {};
  for (int32_t i = 0; i < n; ++i) {
    const float d = (m - v[i]) * k_bins_per_logit;  // >= 0, possibly +inf
    mass[d < static_cast<float>(k_bins) ? static_cast<int>(d) : k_bins] += static_cast<double>(e[i]);
  }
  float floor = -std::numeric_limits<float>::infinity();
  double cum = 0.0;
  for (int b = 0; b < k_bins; ++b) {
    cum += mass[b];
    // A small margin over the target: the bins' sum and the scan's sum differ by rounding only.
    if (cum >= target * (1.0 + 1e-6)) {
      floor = m - static_cast<float>(b + 2) / k_bins_per_logit;  // one bin of slack for the float rounding above
      break;
    }
  }
  const sorted_before before{v};
  for (;;) {
    ids.clear();
    for (int32_t i = 0; i < n; ++i) {
      if (v[i] >= floor) ids.push_back(i);
    }
    std::sort(ids.begin(), ids.end(), before);
    const size_t len = top_p_prefix(e, ids, ids.size(), target);
    if (len > 0) {
      ids.resize(len);
      return;
    }
    if (ids.size() == static_cast<size_t>(n)) return;  // the target is never reached: every token stays
    floor = -std::numeric_limits<float>::infinity();
  }
}

// Step 6 over the kept ids, given in ascending id order.
int32_t draw(const float* v, const int32_t* ids, size_t n_ids, float m, float temperature, float u,
             std::vector<float>& w) {
  w.resize(n_ids);
  double total = 0.0;
  for (size_t i = 0; i < n_ids; ++i) {
    const float d = v[ids[i]] - m;
    w[i] = d == k_neg_inf ? 0.0f : cpu::exp_f32(d / temperature);
    total += static_cast<double>(w[i]);
  }
  const double target = static_cast<double>(u) * total;
  double cum = 0.0;
  int32_t last = ids[0];
  for (size_t i = 0; i < n_ids; ++i) {
    if (w[i] <= 0.0f) continue;
    cum += static_cast<double>(w[i]);
    last = ids[i];
    if (cum > target) return ids[i];
  }
  return last;
}

}  // namespace

float rng_uniform(uint64_t seed, uint64_t counter) {
  const uint64_t k = mix64(seed ^ 0x6a09e667f3bcc909ull);
  const uint64_t x = mix64(k + (counter + 1) * 0x9e3779b97f4a7c15ull);
  return static_cast<float>(x >> 40) * (1.0f / 16777216.0f);
}

uint64_t seed_from_entropy() {
  try {
    std::random_device rd;
    const uint64_t hi = rd();
    const uint64_t lo = rd();
    return (hi << 32) ^ lo;
  } catch (...) {
    // No entropy device: the clock is the best we have (still only a default for runs without --seed).
    return mix64(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  }
}

int32_t sample_token(const float* logits, int32_t n_vocab, const sampling_params& p, const int32_t* history,
                     int64_t n_history, int64_t position, sampler_scratch& s) {
  if (n_vocab <= 0 || logits == nullptr) return -1;
  const int32_t n = n_vocab;
  const size_t nz = static_cast<size_t>(n);

  // --- steps 0-2: working logits, penalties, max, greedy
  std::vector<float>& vals = s.vals;
  vals.resize(nz);
  float* v = vals.data();
  float m = k_neg_inf;
  int32_t arg = 0;
  for (int32_t i = 0; i < n; ++i) {
    v[i] = sanitize(logits[i]);
    if (v[i] > m) {
      m = v[i];
      arg = i;
    }
  }
  if (apply_penalties(v, n, p, history, n_history, s.hist)) {
    m = k_neg_inf;
    arg = 0;
    for (int32_t i = 0; i < n; ++i) {
      if (v[i] > m) {
        m = v[i];
        arg = i;
      }
    }
  }
  if (m == k_neg_inf) return 0;
  if (!(p.temperature > 0.0f)) return arg;

  // --- steps 3-5: the kept prefix of the sorted order, into s.ids (or every token when nothing truncates)
  const bool use_top_k = p.top_k > 0 && p.top_k < n;
  const bool use_top_p = p.top_p < 1.0f;
  const bool use_min_p = p.min_p > 0.0f;
  const float min_p_floor =
      use_min_p ? m + static_cast<float>(cpu::log_f64(static_cast<double>(p.min_p))) : k_neg_inf;
  std::vector<int32_t>& ids = s.ids;
  ids.reserve(nz);
  bool keep_all = false;

  if (use_top_k) {
    select_top_k(v, n, p.top_k, ids);
    size_t len = ids.size();
    if (use_min_p) {
      size_t l = 1;
      while (l < len && v[ids[l]] >= min_p_floor) ++l;
      len = l;
    }
    if (use_top_p) {
      // Z over the k candidates in id order; e is filled for the candidates only.
      s.order.assign(ids.begin(), ids.end());
      std::sort(s.order.begin(), s.order.end());
      s.probs.resize(nz);
      double z = 0.0;
      for (int32_t id : s.order) {
        s.probs[static_cast<size_t>(id)] = prob_unnorm(v[id], m);
        z += static_cast<double>(s.probs[static_cast<size_t>(id)]);
      }
      const size_t l = top_p_prefix(s.probs.data(), ids, len, static_cast<double>(p.top_p) * z);
      if (l > 0) len = l;
    }
    ids.resize(len);
  } else if (use_min_p) {
    ids.clear();
    for (int32_t i = 0; i < n; ++i) {
      if (v[i] >= min_p_floor) ids.push_back(i);
    }
    if (ids.empty()) ids.push_back(arg);  // min_p > 1: only the first of the sorted order stays
    std::sort(ids.begin(), ids.end(), sorted_before{v});
    if (use_top_p) {
      const double target = static_cast<double>(p.top_p) * sum_exp_all(v, n, m, s.probs);
      const size_t l = top_p_prefix(s.probs.data(), ids, ids.size(), target);
      if (l > 0) ids.resize(l);
    }
  } else if (use_top_p) {
    const double target = static_cast<double>(p.top_p) * sum_exp_all(v, n, m, s.probs);
    top_p_whole_vocab(v, s.probs.data(), n, m, target, ids);
    keep_all = ids.size() == nz;
  } else {
    keep_all = true;
  }

  // --- step 6: temperature, softmax weights and the draw, in ascending id order
  const float u = rng_uniform(p.seed, static_cast<uint64_t>(position));
  if (keep_all) {
    ids.resize(nz);
    for (int32_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
    return draw(v, ids.data(), nz, m, p.temperature, u, s.probs);
  }
  std::sort(ids.begin(), ids.end());
  return draw(v, ids.data(), ids.size(), m, p.temperature, u, s.probs);
}

}  // namespace lime
