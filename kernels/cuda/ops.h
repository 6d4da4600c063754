// Host-side launchers of lime's CUDA kernels: the GPU twins of kernels/cpu, in the same canonical reduction order
// (kernels/cpu/canonical.h), so a GPU node's activations and logits are bitwise those of the CPU path. Pointers
// are device pointers; every launch is asynchronous on `stream` and never allocates or synchronizes.
#pragma once
#include <cstdint>

#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cuda {

using stream_t = void*;  // a cudaStream_t; nullptr is the legacy default stream

// Result of a launch or a runtime call: a kernel status (shape/type checks, done on the host before launching)
// and the CUDA (or cuBLAS, matmul_fast only) error, if any, with its string. ok() when all are clear.
struct cuda_status {
  kstatus k = kstatus::ok;
  int cuda_error = 0;           // a cudaError_t value; 0 = cudaSuccess
  int cublas_error = 0;         // a cublasStatus_t value; 0 = CUBLAS_STATUS_SUCCESS
  const char* message = "";     // static string: the CUDA/cuBLAS error string or kstatus_name
  bool ok() const { return k == kstatus::ok && cuda_error == 0 && cublas_error == 0; }
};

// Devices visible to this process (0 when there is no driver or no device: never an error).
int device_count();

// y = x * W^T, fp32 accumulation in the canonical order. y[c, r] depends only on row r of W and row c of x
// (batch-invariant); bitwise equal to cpu::matmul_ref. Every computable type of kernels/tensor_type.h.
struct matmul_args {
  tensor_type w_type;
  const void* w;      // [n_rows, k] in w_type, rows packed back to back (tensor_row_bytes)
  int64_t n_rows;     // output features
  int64_t k;          // input features (a multiple of the type's block_elems)
  const float* x;     // [n_cols, k] fp32
  int64_t n_cols;     // tokens (1 = matvec)
  float* y;           // [n_cols, y_stride] fp32: y[c * y_stride + r]
  int64_t y_stride = 0;  // floats from one column of y to the next; 0 = n_rows (packed). A larger stride writes
                         // a block of rows straight into a wider matrix (the output head's blocks into the logits)
};
cuda_status matmul(const matmul_args& a, stream_t stream);

// Opt-in fast prefill (--fast-prefill): y = x * W^T by cuBLAS (cublasGemmEx, fp16 inputs, fp32 accumulation) in
// an order of cuBLAS's choosing, so NOT bitwise equal to matmul and NOT batch-invariant; close to it (about 1e-3
// relative to sum_k |w_k x_k|). x is rounded to fp16 once, W is dequantized to fp16 in tiles of rows, both into
// `scratch` (device, 256-byte aligned); at least matmul_fast_scratch_bytes(a.k, a.n_cols, 1) bytes, and more
// gives taller tiles (fewer GEMM calls). cublas_handle: a cublasHandle_t of the caller (its stream is set to
// `stream`). Every computable type; k must fit an int. bad_argument when scratch is too small.
cuda_status matmul_fast(const matmul_args& a, void* cublas_handle, void* scratch, size_t scratch_bytes,
                        stream_t stream);
// Scratch bytes for tiles of tile_rows weight rows: the fp16 copy of x, then one fp16 tile.
size_t matmul_fast_scratch_bytes(int64_t k, int64_t n_cols, int64_t tile_rows);
// A cuBLAS handle for matmul_fast (callers outside kernels/cuda need no cuBLAS header); destroy(nullptr) is a no-op.
cuda_status blas_create(void** handle);
void blas_destroy(void* handle);

// rmsnorm of n_rows rows of n elements: y = (x * (1 / sqrt(dot_canonical(x, x) / n + eps))) * w, as
// cpu::rmsnorm_ref. w: [n] f32 or nullptr. x and y may alias.
cuda_status rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps, stream_t stream);

// Rotary embedding in place on n_tok tokens of n_head heads: x: [n_tok, n_head, head_dim]. cs: [n_tok, n_rot / 2, 2]
// (cos, sin) per token and pair, computed on the host by cpu::rope_cos_sin (kernels/cpu/rope.h), as cpu::rope_ref
// rotates (fp32-rounded sincos_f64 of pos * inv_freq[i]). x0' = x0*c - x1*s, x1' = x0*s + x1*c, each product
// rounded (no fma). neox: pairs (i, i+n_rot/2).
cuda_status rope(float* x, const float* cs, int64_t n_tok, int32_t n_head, int32_t head_dim, int32_t n_rot, bool neox,
                 stream_t stream);

// out[i] = silu_f32(gate[i]) * up[i] (cpu::swiglu_ref). out may alias gate or up.
cuda_status swiglu(const float* gate, const float* up, float* out, int64_t n, stream_t stream);

// y[i] = a[i] + b[i]. y may alias a or b.
cuda_status add(const float* a, const float* b, float* y, int64_t n, stream_t stream);

// Softmax of n_rows rows of n elements in place (cpu::softmax_ref: sequential max, exp_f32, canonical sum).
cuda_status softmax(float* x, int64_t n_rows, int64_t n, stream_t stream);

// Embedding lookup: out[i] = dequantized row ids[i] of table ([n_rows, n_embd] in t). ids: device [n_ids]. Ids are
// checked on the host by the caller (an id out of range writes zeros there, never reads outside the table).
cuda_status get_rows(tensor_type t, const void* table, int64_t n_rows, int64_t n_embd, const int32_t* ids,
                     int64_t n_ids, float* out, stream_t stream);

// Stores n_tok K (or V) rows into the paged cache: row i (n_elems fp32 from src + i * n_elems) goes to dst[i]
// (a device pointer to that position's row in its block), converted to kv_type (f32: copied; f16: round to nearest
// even as cpu::fp32_to_fp16). dst: device array [n_tok] of device pointers.
cuda_status kv_store(const float* src, void* const* dst, int64_t n_tok, int64_t n_elems, tensor_type kv_type,
                     stream_t stream);

// Causal GQA attention of n_tok query tokens against a paged KV cache, per token and head in the order of
// cpu::attention_ref (chunks of k_attn_chunk = 256 positions, per-chunk max/exp_f32/sequential sums, then the
// chunk merge), so each head's output is bitwise the CPU's.
struct attention_args {
  const float* q;               // [n_tok, n_head, head_dim] (roped)
  tensor_type kv_type;          // f32 or f16
  const void* const* k_blocks;  // device [n_tok, max_blocks] device pointers: token t's block b of K at
                                // k_blocks[t * max_blocks + b] (positions [b*block_size, (b+1)*block_size))
  const void* const* v_blocks;  // same for V
  int32_t max_blocks;           // table stride
  const int32_t* n_pos;         // device [n_tok]: token t attends to positions [0, n_pos[t]); a value outside
                                // [1, max_blocks * block_size] (unchecked on the host) gives NaN outputs
  int32_t block_size;           // positions per block
  int64_t kv_row_elems;         // elements per position in a block row (n_head_kv * head_dim)
  int32_t n_head;
  int32_t n_head_kv;            // n_head % n_head_kv == 0
  int32_t head_dim;             // <= 256
  int64_t n_tok;
  float scale;                  // usually 1/sqrt(head_dim)
  float* out;                   // [n_tok, n_head, head_dim]
};
cuda_status attention(const attention_args& a, stream_t stream);

}  // namespace lime::cuda
