// Packed block layouts of GGML's quantized types (byte for byte as in GGUF files), shared by the CPU and
// CUDA kernels. Owns only the structs, their geometry and the K-quant scale unpacking; no arithmetic on values.
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define LIME_HOST_DEVICE __host__ __device__
#else
#define LIME_HOST_DEVICE
#endif

namespace lime {

// Elements per block. Halves (`d`, `m`, `dmin`) are IEEE binary16 bit patterns, little-endian like the whole
// file; lime assumes a little-endian host. All structs have 2-byte alignment at most, so a row of blocks can
// sit at any even address (the CPU reference copies each block out with memcpy and needs no alignment).
constexpr int qk_legacy = 32;   // q4_0, q4_1, q5_0, q5_1, q8_0
constexpr int qk_k = 256;       // q4_k, q5_k, q6_k (super-blocks)
constexpr int k_scale_size = 12;

// q4_0: x[j] = (q[j] - 8) * d. Byte qs[i] holds element i in its low nibble and element i + 16 in its high one.
struct block_q4_0 {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // 32 x 4-bit quants
};

// q4_1: x[j] = q[j] * d + m. Nibble order as in q4_0.
struct block_q4_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 offset (the block minimum)
  uint8_t qs[16];   // 32 x 4-bit quants
};

// q5_0: x[j] = (q[j] - 16) * d, q 5 bits: the low 4 as in q4_0, bit 4 of element j is bit j of qh
// (read as a little-endian uint32).
struct block_q5_0 {
  uint16_t d;       // fp16 scale
  uint8_t qh[4];    // bit 4 of each of the 32 quants
  uint8_t qs[16];   // low 4 bits
};

// q5_1: x[j] = q[j] * d + m, bits laid out as in q5_0.
struct block_q5_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 offset
  uint8_t qh[4];    // bit 4 of each of the 32 quants
  uint8_t qs[16];   // low 4 bits
};

// q8_0: x[j] = qs[j] * d.
struct block_q8_0 {
  uint16_t d;       // fp16 scale
  int8_t qs[32];    // signed 8-bit quants
};

// q4_k: 8 sub-blocks of 32; sub-block s has a 6-bit scale sc[s] and a 6-bit min m[s] (see k4_scale_min):
// x = (d * sc[s]) * q - (dmin * m[s]), q 4 bits. Chunk c (0..3) of 64 elements is qs[32c .. 32c+31]:
// the low nibble of qs[32c + l] is element 64c + l (sub-block 2c), the high nibble element 64c + 32 + l (2c+1).
struct block_q4_k {
  uint16_t d;                   // fp16 super-scale of the sub-block scales
  uint16_t dmin;                // fp16 super-scale of the sub-block mins
  uint8_t scales[k_scale_size]; // 8 scales + 8 mins, 6 bits each, packed (k4_scale_min)
  uint8_t qs[qk_k / 2];         // 256 x low 4 bits
};

// q5_k: as q4_k with a fifth bit per quant: element 64c + l takes bit 2c of qh[l] and element 64c + 32 + l
// takes bit 2c + 1 of qh[l] (q = low nibble | bit << 4).
struct block_q5_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[k_scale_size];
  uint8_t qh[qk_k / 8];         // bit 4 of the quants
  uint8_t qs[qk_k / 2];         // 256 x low 4 bits
};

// q6_k: 16 sub-blocks of 16 with signed 8-bit scales; x = (d * scales[e / 16]) * (q - 32), q 6 bits.
// Half h (0, 1) of 128 elements uses ql[64h ..], qh[32h ..]; for l in 0..31 and e0 = 128h:
//   element e0 + l      : low nibble of ql[64h + l]      | bits 0-1 of qh[32h + l] << 4
//   element e0 + l + 32 : low nibble of ql[64h + l + 32] | bits 2-3 of qh[32h + l] << 4
//   element e0 + l + 64 : high nibble of ql[64h + l]     | bits 4-5 of qh[32h + l] << 4
//   element e0 + l + 96 : high nibble of ql[64h + l + 32]| bits 6-7 of qh[32h + l] << 4
struct block_q6_k {
  uint8_t ql[qk_k / 2];         // low 4 bits
  uint8_t qh[qk_k / 4];         // high 2 bits
  int8_t scales[qk_k / 16];     // signed sub-block scales
  uint16_t d;                   // fp16 super-scale
};

static_assert(sizeof(block_q4_0) == 18, "q4_0 block must be 18 bytes");
static_assert(sizeof(block_q4_1) == 20, "q4_1 block must be 20 bytes");
static_assert(sizeof(block_q5_0) == 22, "q5_0 block must be 22 bytes");
static_assert(sizeof(block_q5_1) == 24, "q5_1 block must be 24 bytes");
static_assert(sizeof(block_q8_0) == 34, "q8_0 block must be 34 bytes");
static_assert(sizeof(block_q4_k) == 144, "q4_k block must be 144 bytes");
static_assert(sizeof(block_q5_k) == 176, "q5_k block must be 176 bytes");
static_assert(sizeof(block_q6_k) == 210, "q6_k block must be 210 bytes");
static_assert(offsetof(block_q5_0, qs) == 6 && offsetof(block_q5_1, qs) == 8, "q5 field offsets");
static_assert(offsetof(block_q4_k, qs) == 16 && offsetof(block_q5_k, qs) == 48, "k-quant field offsets");
static_assert(offsetof(block_q6_k, scales) == 192 && offsetof(block_q6_k, d) == 208, "q6_k field offsets");
static_assert(alignof(block_q6_k) <= 2 && alignof(block_q4_k) <= 2, "blocks must pack at 2-byte strides");

// Sub-block s (0..7) of q4_k/q5_k: its 6-bit scale and min from the 12 packed bytes.
//   s < 4:  sc = scales[s] & 63,                              m = scales[s + 4] & 63
//   s >= 4: sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4, m = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4
// i.e. bytes 0-3 carry sc[0..3] plus the top 2 bits of sc[4..7], bytes 4-7 m[0..3] plus the top 2 bits of
// m[4..7], bytes 8-11 the low nibbles of sc[4..7] (low) and m[4..7] (high).
LIME_HOST_DEVICE inline void k4_scale_min(int s, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (s < 4) {
    *sc = static_cast<uint8_t>(scales[s] & 63);
    *m = static_cast<uint8_t>(scales[s + 4] & 63);
  } else {
    *sc = static_cast<uint8_t>((scales[s + 4] & 15) | ((scales[s - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4));
  }
}

}  // namespace lime
