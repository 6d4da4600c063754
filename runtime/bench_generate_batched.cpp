// lime-bench generate's batched decode (--seqs): several sequences decoded together, one token of each per
// forward pass, as a node serving several users runs them; the aggregate tokens/s of each run.
#include <algorithm>

#include "runtime/bench.h"
#include "runtime/forward.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/sampler.h"

namespace lime {

result<double> bench_batched_decode(const model& m, thread_pool& pool, int32_t n_seqs, int32_t n_gen, uint64_t seed) {
  if (n_seqs < 1 || n_gen < 1) return make_error(errc::invalid_argument, "batched decode needs sequences and tokens");
  const model_hparams& hp = m.hparams();
  kv_cache_config c;
  c.n_layer = hp.n_layer;
  c.row_elems = hp.n_embd_kv();
  c.block_size = 32;
  c.max_blocks = n_seqs * ((n_gen + c.block_size - 1) / c.block_size);
  LIME_TRY(kv_cache kv, kv_cache::create(c));
  forward_pass fwd(m, {0, hp.n_layer}, kv, pool);
  // Each sequence starts from its own token drawn from the vocabulary, then follows its greedy (argmax) choice.
  std::vector<int32_t> next(static_cast<size_t>(n_seqs));
  for (int32_t s = 0; s < n_seqs; ++s) {
    const float u = rng_uniform(seed, static_cast<uint64_t>(s));
    next[static_cast<size_t>(s)] = static_cast<int32_t>(u * static_cast<float>(hp.n_vocab)) % hp.n_vocab;
  }
  micro_batch batch;
  forward_output out;
  const double t0 = bench_now_s();
  for (int32_t pos = 0; pos < n_gen; ++pos) {
    batch.clear();
    for (int32_t s = 0; s < n_seqs; ++s) batch.add(next[static_cast<size_t>(s)], pos, s, true);
    LIME_TRY_VOID(fwd.run(batch, out));
    for (size_t i = 0; i < out.logit_rows.size(); ++i) {
      const float* row = out.logits.data() + i * static_cast<size_t>(hp.n_vocab);
      const int32_t seq = batch.seq[static_cast<size_t>(out.logit_rows[i])];
      next[static_cast<size_t>(seq)] = static_cast<int32_t>(std::max_element(row, row + hp.n_vocab) - row);
    }
  }
  const double seconds = bench_now_s() - t0;
  return static_cast<double>(n_seqs) * static_cast<double>(n_gen) / seconds;
}

}  // namespace lime
