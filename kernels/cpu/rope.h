// Rotary position embedding, normal (GPT-J/Llama interleaved pairs) and NeoX (half-split pairs) styles.
#pragma once
#include <cstdint>

namespace lime::cpu {

// Per-dimension-pair inverse frequencies, in double: inv_freq[i] = freq_scale * base^(-2i/n_rot) / factor[i]
// for i in [0, n_rot/2). factors may be nullptr (all 1): the Llama-3 `rope_freqs` tensor holds them.
// Uses pow_f64 from kernels/cpu/math.h so every machine gets the same table.
void rope_inv_freq(double* inv_freq, int32_t n_rot, double base, double freq_scale, const float* factors);

// Rotates, in place, the first n_rot dims of each of n_head heads of one token at position pos:
// x: [n_head, head_dim]. angle_i = (double)pos * inv_freq[i]; (c, s) = sincos_f64(angle_i) rounded to fp32;
// normal: pairs (2i, 2i+1); neox: pairs (i, i + n_rot/2). x0' = x0*c - x1*s, x1' = x0*s + x1*c in fp32
// (each product rounded, then the sum: no fma).
void rope_ref(float* x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, const double* inv_freq,
              bool neox);

// rope_ref's (c, s) for n_tok positions: cs [n_tok, n_rot / 2, 2] = (cos, sin) per token and pair. Computed once
// per batch, it serves every layer (and the CUDA rope); rope_apply with it gives rope_ref's bits.
void rope_cos_sin(const int32_t* pos, int64_t n_tok, int32_t n_rot, const double* inv_freq, float* cs);

// rope_ref with one token's (c, s) from rope_cos_sin: cs [n_rot / 2, 2].
void rope_apply(float* x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float* cs, bool neox);

}  // namespace lime::cpu
