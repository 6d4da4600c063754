// cuda_forward's per-batch host work: the device scratch sizes, and the inputs of a batch (embedding rows, rope
// (cos, sin) computed exactly as cpu::rope_ref computes them, positions, logit rows, KV row pointers and block
// tables) written into one page-locked buffer and uploaded with one copy on the compute stream.
#include "runtime/cuda_forward.h"

#if LIME_HAVE_CUDA
#include <algorithm>
#include <cstring>

#include "kernels/cpu/get_rows.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/ops.h"

namespace lime {
namespace {

constexpr uint64_t k_align = 256;
uint64_t up(uint64_t n) { return (n + k_align - 1) / k_align * k_align; }

}  // namespace

uint64_t cuda_forward::activation_bytes(const model_hparams& hp, size_t rows, size_t out_rows, bool last) {
  const uint64_t r = rows;
  uint64_t b = 3 * up(r * static_cast<uint64_t>(hp.n_embd) * 4) + 2 * up(r * static_cast<uint64_t>(hp.n_embd_q()) * 4) +
               2 * up(r * static_cast<uint64_t>(hp.n_embd_kv()) * 4) + 2 * up(r * static_cast<uint64_t>(hp.n_ff) * 4);
  if (last) b += up(out_rows * static_cast<uint64_t>(hp.n_vocab) * 4);
  return b;
}

status cuda_forward::grow_scratch(size_t rows, size_t out_rows) {
  const model_hparams& hp = model_->hparams();
  const bool last = range_.hi == hp.n_layer;
  // Each part is reallocated only when it grows.
  if (rows > s_.rows || !act_) {
    be_->free(act_);
    act_ = nullptr;
    s_.rows = 0;
    const uint64_t r = rows;
    const uint64_t parts[] = {r * static_cast<uint64_t>(hp.n_embd), r * static_cast<uint64_t>(hp.n_embd),
                              r * static_cast<uint64_t>(hp.n_embd_q()), r * static_cast<uint64_t>(hp.n_embd_kv()),
                              r * static_cast<uint64_t>(hp.n_embd_kv()), r * static_cast<uint64_t>(hp.n_embd_q()),
                              r * static_cast<uint64_t>(hp.n_embd), r * static_cast<uint64_t>(hp.n_ff),
                              r * static_cast<uint64_t>(hp.n_ff)};
    float** dst[] = {&s_.x, &s_.cur, &s_.q, &s_.k, &s_.v, &s_.attn, &s_.proj, &s_.gate, &s_.up};
    uint64_t total = 0;
    for (uint64_t p : parts) total += up(p * 4);
    LIME_TRY(act_, be_->alloc(total));
    uint64_t off = 0;
    for (size_t i = 0; i < 9; ++i) {
      *dst[i] = reinterpret_cast<float*>(static_cast<uint8_t*>(act_) + off);
      off += up(parts[i] * 4);
    }
    s_.rows = rows;
  }
  if (!last) return {};
  if (out_rows > s_.out_rows || !s_.logits) {
    be_->free(s_.logits);  // cudaFree waits for queued work that may still read it
    s_.logits = nullptr;
    s_.out_rows = 0;
    LIME_TRY(void* p, be_->alloc(out_rows * static_cast<uint64_t>(hp.n_vocab) * 4));
    s_.logits = static_cast<float*>(p);
    s_.out_rows = out_rows;
  }
  return {};
}

// Tiles of up to 2048 weight rows: few enough GEMM calls per matrix, and a bounded share of the device budget
// (70 MiB at Llama-3-8B's n_ff with 512 rows: the device peak of an H100 run rose by that much).
uint64_t cuda_forward::fast_scratch_bytes(const model_hparams& hp, size_t rows) {
  const int64_t k = std::max({hp.n_embd, hp.n_embd_q(), hp.n_ff});
  return cuda::matmul_fast_scratch_bytes(k, static_cast<int64_t>(rows), 2048);
}

status cuda_forward::grow_fast_scratch(size_t rows) {
  if (rows <= fast_rows_ && fast_scratch_) return {};
  be_->free(fast_scratch_);  // cudaFree waits for queued work that may still read it
  fast_scratch_ = nullptr;
  fast_rows_ = 0;
  LIME_TRY(fast_scratch_, be_->alloc(fast_scratch_bytes(model_->hparams(), rows)));
  fast_rows_ = rows;
  return {};
}

status cuda_forward::grow_inputs(uint64_t bytes) {
  if (bytes <= in_cap_ && in_dev_) return {};
  be_->free(in_dev_);
  be_->free_host(in_host_);
  in_dev_ = in_host_ = nullptr;
  in_cap_ = 0;
  LIME_TRY(in_dev_, be_->alloc(bytes));
  LIME_TRY(in_host_, be_->alloc_host(bytes));
  in_cap_ = bytes;
  return {};
}

cuda_forward::input_layout cuda_forward::layout(size_t n, size_t n_out, int32_t max_blocks) const {
  const model_hparams& hp = model_->hparams();
  const uint64_t n_layer = static_cast<uint64_t>(range_.hi - range_.lo);
  input_layout l;
  l.max_blocks = std::max(1, max_blocks);
  uint64_t off = 0;
  auto take = [&](uint64_t bytes) {
    const uint64_t at = off;
    off += up(bytes == 0 ? 1 : bytes);
    return at;
  };
  l.x = take(n * static_cast<uint64_t>(hp.n_embd) * 4);
  l.cs = take(n * static_cast<uint64_t>(hp.n_rot / 2) * 2 * 4);
  l.n_pos = take(n * 4);
  l.ids = take(n_out * 4);
  l.dst = take(n_layer * 2 * n * sizeof(void*));
  l.tab = take(n_layer * 2 * n * static_cast<uint64_t>(l.max_blocks) * sizeof(void*));
  l.total = off;
  return l;
}

status cuda_forward::stage_inputs(const micro_batch& b, const input_layout& lay) {
  const model_hparams& hp = model_->hparams();
  const size_t n = b.size();
  uint8_t* h = static_cast<uint8_t*>(in_host_);

  // --- input activations: embedding rows at layer 0 (as the CPU pass gets them), else the previous stage's
  float* x = reinterpret_cast<float*>(h + lay.x);
  if (range_.lo == 0 && src_) {
    LIME_TRY_VOID(src_->embed(b.tokens.data(), static_cast<int64_t>(n), x));
  } else if (range_.lo == 0) {
    const weight_view& e = model_->tok_embd();
    cpu::get_rows_ref(e.type, e.data, e.n_rows, e.k, b.tokens.data(), static_cast<int64_t>(n), x);
  } else {
    std::memcpy(x, b.embd.data(), n * static_cast<size_t>(hp.n_embd) * sizeof(float));
  }

  // --- rope (cos, sin) per token and pair: fp32-rounded sincos_f64 of pos * inv_freq[i], as cpu::rope_ref
  if (hp.n_rot > 0)
    cpu::rope_cos_sin(b.pos.data(), static_cast<int64_t>(n), hp.n_rot, inv_freq_.data(), reinterpret_cast<float*>(h + lay.cs));

  // --- positions attended and the rows that want logits
  int32_t* n_pos = reinterpret_cast<int32_t*>(h + lay.n_pos);
  for (size_t t = 0; t < n; ++t) n_pos[t] = b.pos[t] + 1;
  int32_t* ids = reinterpret_cast<int32_t*>(h + lay.ids);
  if (range_.hi == hp.n_layer) {
    size_t r = 0;
    for (size_t t = 0; t < n; ++t)
      if (b.want_logits[t]) ids[r++] = static_cast<int32_t>(t);
  }

  // --- KV: where each token's K/V rows go, and each token's block tables, per layer (device addresses)
  const int32_t n_layer = range_.hi - range_.lo;
  const size_t mb = static_cast<size_t>(lay.max_blocks);
  void** dst = reinterpret_cast<void**>(h + lay.dst);
  const void** tab = reinterpret_cast<const void**>(h + lay.tab);
  for (int32_t l = 0; l < n_layer; ++l) {
    void** dk = dst + (static_cast<size_t>(l) * 2 + 0) * n;
    void** dv = dst + (static_cast<size_t>(l) * 2 + 1) * n;
    const void** tk = tab + (static_cast<size_t>(l) * 2 + 0) * n * mb;
    const void** tv = tab + (static_cast<size_t>(l) * 2 + 1) * n * mb;
    int32_t cached_seq = 0;
    bool cached = false;
    for (size_t t = 0; t < n; ++t) {
      dk[t] = kv_->k_row(l, b.seq[t], b.pos[t]);
      dv[t] = kv_->v_row(l, b.seq[t], b.pos[t]);
      if (!cached || cached_seq != b.seq[t]) {
        kv_->block_tables(l, b.seq[t], kt_, vt_);
        cached_seq = b.seq[t];
        cached = true;
      }
      const size_t have = std::min(mb, kt_.size());
      std::copy(kt_.begin(), kt_.begin() + static_cast<std::ptrdiff_t>(have), tk + t * mb);
      std::copy(vt_.begin(), vt_.begin() + static_cast<std::ptrdiff_t>(have), tv + t * mb);
      std::fill(tk + t * mb + have, tk + (t + 1) * mb, nullptr);
      std::fill(tv + t * mb + have, tv + (t + 1) * mb, nullptr);
    }
  }
  return be_->copy_async(in_dev_, in_host_, lay.total, copy_kind::host_to_device, compute_);
}

}  // namespace lime
#endif
