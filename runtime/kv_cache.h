// Paged KV cache for a range of layers: fixed-size blocks of positions, allocated per sequence on demand from
// a pool with a hard block limit, freed when a sequence ends or is truncated. fp32 by default, f16 opt-in.
// Touched by one thread at a time (the forward pass that owns it).
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "kernels/tensor_type.h"
#include "runtime/result.h"

namespace lime {

// Where KV blocks live when not in host memory (a device: runtime/backend.h). Shared by a cache and its copies.
class kv_block_allocator {
 public:
  virtual ~kv_block_allocator() = default;
  virtual void* alloc(uint64_t bytes) = 0;  // nullptr when it cannot (budget or device full)
  virtual void free(void* p) = 0;
};

struct kv_cache_config {
  int32_t n_layer = 0;       // layers held (a layer range [lo, lo + n_layer) of the model)
  int64_t row_elems = 0;     // elements per position per layer for K (and for V): n_head_kv * head_dim
  tensor_type type = tensor_type::f32;  // f32 or f16
  int32_t block_size = 32;   // positions per block
  int32_t max_blocks = 0;    // pool limit (blocks over all sequences)
  // nullptr: blocks are host memory. Otherwise blocks come from it (k_row / block_tables then return its
  // addresses, e.g. device pointers, which the caller must not dereference on the host).
  std::shared_ptr<kv_block_allocator> allocator;
};

class kv_cache {
 public:
  static result<kv_cache> create(const kv_cache_config& cfg);
  kv_cache(kv_cache&&) noexcept = default;
  kv_cache& operator=(kv_cache&&) noexcept = default;

  const kv_cache_config& config() const { return cfg_; }
  // Bytes of one block (K and V, all held layers).
  uint64_t block_bytes() const;
  int32_t blocks_in_use() const { return blocks_in_use_; }
  int32_t blocks_free() const { return cfg_.max_blocks - blocks_in_use_; }
  int32_t blocks_allocated() const { return blocks_allocated_; }  // blocks whose memory is held (in use or cached)

  // Changes the pool limit (memory pressure moves bytes between the KV and the weights). Lowering it releases the
  // memory of free blocks beyond the new limit at once, so at most max(in use, n) blocks stay allocated.
  // Errors: invalid_argument (n < 1 or n < blocks_in_use(); nothing changes).
  result<void> set_max_blocks(int32_t n);

  // Makes positions [0, n_pos) of seq addressable (allocates blocks). Fails with out_of_memory, changing
  // nothing, when the pool (or the allocator) cannot supply them.
  result<void> reserve(int32_t seq, int32_t n_pos);
  // Keeps positions [0, n_pos) of seq, frees blocks past them.
  void truncate(int32_t seq, int32_t n_pos);
  void release(int32_t seq);
  int32_t capacity(int32_t seq) const;  // positions currently addressable

  // Row of layer `layer` (0-based within the held range) at position pos of seq (must be reserved).
  void* k_row(int32_t layer, int32_t seq, int32_t pos);
  void* v_row(int32_t layer, int32_t seq, int32_t pos);
  // Block tables for attention: out_k[b], out_v[b] point at the rows of block b of seq for this layer.
  void block_tables(int32_t layer, int32_t seq, std::vector<const void*>& out_k, std::vector<const void*>& out_v) const;

 private:
  kv_cache() = default;
  uint8_t* block_layer_base(int32_t block, int32_t layer, bool v) const;
  struct block_free {  // returns a block to the allocator it came from (nullptr: delete[])
    kv_block_allocator* a = nullptr;
    void operator()(uint8_t* p) const;
  };
  using block_ptr = std::unique_ptr<uint8_t[], block_free>;
  block_ptr new_block() const;  // empty when the allocator refuses

  kv_cache_config cfg_;
  size_t elem_bytes_ = 4;
  // Block storage: each block holds [2 (k, v)][n_layer][block_size][row_elems] elements.
  std::vector<block_ptr> blocks_;  // allocated lazily, reused through free_; nullptr once released
  std::vector<int32_t> free_;
  int32_t blocks_in_use_ = 0;
  int32_t blocks_allocated_ = 0;  // entries of blocks_ that hold memory
  std::unordered_map<int32_t, std::vector<int32_t>> seq_blocks_;  // seq -> block ids in position order
};

}  // namespace lime
