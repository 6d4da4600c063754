// Paged KV cache: block pool, per-sequence block lists, row addressing.
#include "runtime/kv_cache.h"

#include <string>

namespace lime {

result<kv_cache> kv_cache::create(const kv_cache_config& cfg) {
  if (cfg.n_layer <= 0 || cfg.row_elems <= 0 || cfg.block_size <= 0 || cfg.max_blocks <= 0)
    return make_error(errc::invalid_argument, "kv cache: layers, row size, block size and block limit must be positive");
  if (cfg.type != tensor_type::f32 && cfg.type != tensor_type::f16)
    return make_error(errc::unsupported, std::string("kv cache: type ") + tensor_type_name(cfg.type) + " is not supported (f32, f16)");
  kv_cache c;
  c.cfg_ = cfg;
  c.elem_bytes_ = cfg.type == tensor_type::f32 ? 4 : 2;
  return c;
}

uint64_t kv_cache::block_bytes() const {
  return 2ull * static_cast<uint64_t>(cfg_.n_layer) * static_cast<uint64_t>(cfg_.block_size) *
         static_cast<uint64_t>(cfg_.row_elems) * elem_bytes_;
}

void kv_cache::block_free::operator()(uint8_t* p) const {
  if (a) a->free(p);
  else delete[] p;
}

kv_cache::block_ptr kv_cache::new_block() const {
  if (!cfg_.allocator) return block_ptr(new uint8_t[block_bytes()], block_free{});
  return block_ptr(static_cast<uint8_t*>(cfg_.allocator->alloc(block_bytes())), block_free{cfg_.allocator.get()});
}

result<void> kv_cache::reserve(int32_t seq, int32_t n_pos) {
  if (n_pos < 0) return make_error(errc::invalid_argument, "kv cache: negative position count");
  std::vector<int32_t>& list = seq_blocks_[seq];
  const int64_t need = (static_cast<int64_t>(n_pos) + cfg_.block_size - 1) / cfg_.block_size;
  const int64_t extra = need - static_cast<int64_t>(list.size());
  if (extra <= 0) return {};
  if (extra > blocks_free()) {
    if (list.empty()) seq_blocks_.erase(seq);
    return make_error(errc::out_of_memory, "kv cache: " + std::to_string(extra) + " more blocks needed, " +
                                               std::to_string(blocks_free()) + " free");
  }
  for (int64_t i = 0; i < extra; ++i) {
    int32_t id;
    if (!free_.empty() && blocks_[static_cast<size_t>(free_.back())]) {
      id = free_.back();
      free_.pop_back();
    } else {
      // A free id without memory (released by set_max_blocks) or a new one: only an allocator can refuse.
      block_ptr b = new_block();
      if (!b) {
        truncate(seq, static_cast<int32_t>((static_cast<int64_t>(list.size()) - i) * cfg_.block_size));
        return make_error(errc::out_of_memory, "kv cache: the block allocator has no room for " +
                                                   std::to_string(extra - i) + " more blocks of " +
                                                   std::to_string(block_bytes()) + " bytes");
      }
      if (!free_.empty()) {
        id = free_.back();
        free_.pop_back();
        blocks_[static_cast<size_t>(id)] = std::move(b);
      } else {
        id = static_cast<int32_t>(blocks_.size());
        blocks_.push_back(std::move(b));
      }
      ++blocks_allocated_;
    }
    list.push_back(id);
    ++blocks_in_use_;
  }
  return {};
}

void kv_cache::truncate(int32_t seq, int32_t n_pos) {
  auto it = seq_blocks_.find(seq);
  if (it == seq_blocks_.end()) return;
  const size_t keep = static_cast<size_t>((static_cast<int64_t>(n_pos < 0 ? 0 : n_pos) + cfg_.block_size - 1) / cfg_.block_size);
  while (it->second.size() > keep) {
    free_.push_back(it->second.back());
    it->second.pop_back();
    --blocks_in_use_;
  }
  if (it->second.empty()) seq_blocks_.erase(it);
}

void kv_cache::release(int32_t seq) { truncate(seq, 0); }

result<void> kv_cache::set_max_blocks(int32_t n) {
  if (n < 1 || n < blocks_in_use_)
    return make_error(errc::invalid_argument, "kv cache: a limit of " + std::to_string(n) + " blocks is below the " +
                                                  std::to_string(blocks_in_use_) + " in use (or below 1)");
  cfg_.max_blocks = n;
  // Free blocks keep their memory for reuse; beyond the limit that memory goes back now (a free block is never
  // in a sequence's list, so its storage can be dropped and allocated again when it is taken).
  for (int32_t id : free_) {
    if (blocks_allocated_ <= n) break;
    auto& b = blocks_[static_cast<size_t>(id)];
    if (b) {
      b.reset();
      --blocks_allocated_;
    }
  }
  return {};
}

int32_t kv_cache::capacity(int32_t seq) const {
  auto it = seq_blocks_.find(seq);
  return it == seq_blocks_.end() ? 0 : static_cast<int32_t>(it->second.size()) * cfg_.block_size;
}

uint8_t* kv_cache::block_layer_base(int32_t block, int32_t layer, bool v) const {
  const uint64_t layer_bytes = static_cast<uint64_t>(cfg_.block_size) * static_cast<uint64_t>(cfg_.row_elems) * elem_bytes_;
  const uint64_t off = (static_cast<uint64_t>(v ? cfg_.n_layer : 0) + static_cast<uint64_t>(layer)) * layer_bytes;
  return blocks_[static_cast<size_t>(block)].get() + off;
}

void* kv_cache::k_row(int32_t layer, int32_t seq, int32_t pos) {
  const std::vector<int32_t>& list = seq_blocks_.at(seq);
  const int32_t block = list.at(static_cast<size_t>(pos / cfg_.block_size));
  return block_layer_base(block, layer, false) + static_cast<uint64_t>(pos % cfg_.block_size) * cfg_.row_elems * elem_bytes_;
}

void* kv_cache::v_row(int32_t layer, int32_t seq, int32_t pos) {
  const std::vector<int32_t>& list = seq_blocks_.at(seq);
  const int32_t block = list.at(static_cast<size_t>(pos / cfg_.block_size));
  return block_layer_base(block, layer, true) + static_cast<uint64_t>(pos % cfg_.block_size) * cfg_.row_elems * elem_bytes_;
}

void kv_cache::block_tables(int32_t layer, int32_t seq, std::vector<const void*>& out_k, std::vector<const void*>& out_v) const {
  out_k.clear();
  out_v.clear();
  auto it = seq_blocks_.find(seq);
  if (it == seq_blocks_.end()) return;
  for (int32_t b : it->second) {
    out_k.push_back(block_layer_base(b, layer, false));
    out_v.push_back(block_layer_base(b, layer, true));
  }
}

}  // namespace lime
