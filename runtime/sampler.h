// Sampling one token for one sequence from one fp32 logits row: llama.cpp's default chain (penalties, top-k,
// top-p, min-p, temperature, draw) with a counter-based random draw, so a sample is a pure function of
// (logits, params, history, position): never of batch, thread, node or time. Never touches the logits it reads.
#pragma once
#include <cstdint>
#include <vector>

namespace lime {

struct sampling_params {
  float temperature = 0.8f;     // <= 0 (or NaN): greedy, the argmax after penalties (ties -> lowest id)
  int32_t top_k = 40;           // <= 0 or >= n_vocab: off
  float top_p = 0.95f;          // >= 1 (or NaN): off
  float min_p = 0.05f;          // <= 0 (or NaN): off
  float repeat_penalty = 1.0f;  // 1: off; must be > 0 (<= 0 or NaN is taken as off)
  int32_t repeat_last_n = 64;   // history tokens the penalty looks at (0: off, < 0: the whole history)
  uint64_t seed = 0;
};

// Buffers reused between calls (one per sampling thread); after the first call with the largest vocab and
// history, sample_token allocates nothing. Contents between calls are meaningless: results never depend on them.
struct sampler_scratch {
  std::vector<float> vals;     // [n_vocab] working logits (sanitized, penalized)
  std::vector<int32_t> ids;    // [<= n_vocab] candidate token ids
  std::vector<int32_t> order;  // [<= n_vocab] candidate ids re-sorted by id
  std::vector<float> probs;    // [<= n_vocab] unnormalized probabilities of the kept tokens
  std::vector<int32_t> hist;   // [<= repeat window] distinct penalized tokens
};

// Samples the token that will occupy `position` in its sequence.
// logits: [n_vocab] raw fp32 logits, not modified. history: [n_history] the sequence's tokens so far (prompt +
// generated), oldest first; ids outside [0, n_vocab) are ignored. Returns a token id in [0, n_vocab), or -1 when
// n_vocab <= 0.
//
// Exact definition (v = working logits, "sorted order" = value descending, then id ascending):
//  0. v[i] = logits[i], with NaN -> -inf and +inf -> FLT_MAX (also after step 1), so the order is total.
//  1. Penalties: for each distinct id among the last repeat_last_n history tokens, v > 0 ? v / penalty
//     : v * penalty. m = max v; if every v is -inf the result is id 0.
//  2. Greedy (temperature <= 0): the first id (lowest) with v == m.
//  3. Candidates: the first top_k tokens in sorted order (all tokens when top_k is off).
//  4. top_p: e[i] = exp_f32(v[i] - m); Z = sum of e over the candidates in ascending id order (double,
//     sequential); walk the candidates in sorted order summing e (double, sequential) and keep the shortest
//     prefix whose sum >= top_p * Z (at least 1 token; all candidates when the sum never gets there).
//  5. min_p: keep the candidates with v >= m + (float)log_f64(min_p) (at least the first in sorted order).
//     Steps 3-5 each keep a prefix of the sorted order, so the kept set is the shortest of the three prefixes.
//  6. Temperature T and draw: over the kept tokens in ascending id order, w[i] = exp_f32((v[i] - m) / T)
//     (0 when v[i] = -inf); W = their sum (double, sequential); u = rng_uniform(seed, position); the result is
//     the first kept token whose running sum (double, sequential) is > u * W (the last with w > 0 if none is).
// Both sums are sequential, so the result depends on nothing but the inputs.
int32_t sample_token(const float* logits, int32_t n_vocab, const sampling_params& p, const int32_t* history,
                     int64_t n_history, int64_t position, sampler_scratch& scratch);

// Counter-based uniform draw in [0, 1), a pure function of (seed, counter):
//   mix(z) = splitmix64's finalizer: z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27;
//            z *= 0x94d049bb133111eb; z ^= z >> 31   (all mod 2^64)
//   k = mix(seed ^ 0x6a09e667f3bcc909)
//   x = mix(k + (counter + 1) * 0x9e3779b97f4a7c15)   (output number counter + 1 of splitmix64 from state k)
//   result = (x >> 40) * 2^-24                         (top 24 bits, exact in fp32)
float rng_uniform(uint64_t seed, uint64_t counter);

// A seed for runs without --seed: 64 bits from std::random_device.
uint64_t seed_from_entropy();

}  // namespace lime
