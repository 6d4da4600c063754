// cuda_weights: the residency plan under the device budget, uploads, the ring of device slots fed on the copy
// stream, and the in-place (unified) views of a registered source.
#include "runtime/cuda_weights.h"

#if LIME_HAVE_CUDA
#include <algorithm>
#include <cstring>

namespace lime {
namespace {

constexpr uint64_t k_pack_align = 256;  // bytes: every tensor of a packed unit starts at a multiple (kernels' loads)

uint64_t pack_up(uint64_t n) { return (n + k_pack_align - 1) / k_pack_align * k_pack_align; }

std::vector<weight_view> layer_tensors(const layer_weights& w) {
  return {w.attn_norm, w.wq, w.wk, w.wv, w.wo, w.ffn_norm, w.w_gate, w.w_up, w.w_down};
}

weight_view* layer_field(layer_weights& w, size_t j) {
  weight_view* f[] = {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.ffn_norm, &w.w_gate, &w.w_up, &w.w_down};
  return f[j];
}

const weight_view& layer_field(const layer_weights& w, size_t j) { return *layer_field(const_cast<layer_weights&>(w), j); }

uint64_t mib(uint64_t b) { return (b + (1ull << 20) - 1) >> 20; }

}  // namespace

std::string cuda_weights_stats::describe() const {
  if (in_place) return "weights read in place from registered host memory";
  std::string s = std::to_string(resident_units) + "/" + std::to_string(units) + " units resident (" +
                  std::to_string(mib(resident_bytes)) + " MiB)";
  if (ring_depth > 0)
    s += ", ring " + std::to_string(ring_depth) + " x " + std::to_string(mib(slot_bytes)) + " MiB, " +
         std::to_string(mib(streamed_per_pass)) + " MiB streamed per pass";
  if (pinned_bytes > 0) s += ", " + std::to_string(mib(pinned_bytes)) + " MiB page-locked host";
  return s;
}

uint64_t cuda_weights::min_device_bytes(const model& m, layer_range range) {
  uint64_t largest = 0;
  for (int32_t l = range.lo; l < range.hi; ++l) {
    uint64_t b = 0;
    for (const weight_view& v : layer_tensors(m.layer(l))) b = pack_up(b) + v.n_bytes;
    largest = std::max(largest, pack_up(b));
  }
  if (range.hi == m.hparams().n_layer) largest += pack_up(m.output_norm().n_bytes);
  return largest;
}

result<std::unique_ptr<cuda_weights>> cuda_weights::create(std::shared_ptr<backend> be, const model& m, layer_range range,
                                                           weight_source* src, const cuda_weights_config& cfg,
                                                           stream_handle compute, stream_handle copy) {
  std::unique_ptr<cuda_weights> w(new cuda_weights());
  w->be_ = std::move(be);
  w->model_ = &m;
  w->range_ = range;
  w->src_ = src;
  w->cfg_ = cfg;
  w->compute_ = compute;
  w->copy_ = copy;
  w->mode_ = !src ? mode::model_views : cfg.in_place ? mode::in_place : mode::source_copy;
  w->stats_.in_place = w->mode_ == mode::in_place;
  if (w->mode_ == mode::in_place) {
    LIME_TRY(w->unit_done_, w->be_->event_create());
    return w;
  }
  for (int32_t l = range.lo; l < range.hi; ++l) {
    unit u;
    u.layer = l;
    u.host = layer_tensors(m.layer(l));
    for (const weight_view& v : u.host) {
      u.offset.push_back(u.bytes);
      u.bytes = pack_up(u.bytes + v.n_bytes);
    }
    w->units_.push_back(std::move(u));
  }
  LIME_TRY_VOID(w->plan(cfg.budget));
  LIME_TRY_VOID(w->allocate());
  return w;
}

// Everything resident when it fits; else a ring of depth slots of the largest unit and the units that still fit
// resident, in pass order. The head (model views) is one unit when everything fits, else blocks of rows no larger
// than the largest layer, so a slot never grows for it.
status cuda_weights::plan(uint64_t budget) {
  const model_hparams& hp = model_->hparams();
  const bool head = range_.hi == hp.n_layer;
  uint64_t largest = 0, total = 0;
  for (const unit& u : units_) {
    largest = std::max(largest, u.bytes);
    total += u.bytes;
  }
  const uint64_t norm = head ? pack_up(model_->output_norm().n_bytes) : 0;
  const weight_view& out = model_->output();
  const uint64_t row_bytes = head ? tensor_row_bytes(out.type, out.k) : 0;
  auto add_head = [&](int64_t rows_per_block) {
    for (int64_t r0 = 0; r0 < out.n_rows; r0 += rows_per_block) {
      unit u;
      u.row0 = r0;
      u.n_rows = std::min<int64_t>(rows_per_block, out.n_rows - r0);
      weight_view v = out;
      v.data = static_cast<const uint8_t*>(out.data) + static_cast<uint64_t>(r0) * row_bytes;
      v.n_rows = u.n_rows;
      v.n_bytes = static_cast<uint64_t>(u.n_rows) * row_bytes;
      u.host = {v};
      u.offset = {0};
      u.bytes = pack_up(v.n_bytes);
      max_head_rows_ = std::max(max_head_rows_, u.n_rows);
      units_.push_back(std::move(u));
    }
  };
  n_layer_units_ = units_.size();
  if (mode_ == mode::model_views && head) {
    if (total + pack_up(out.n_bytes) + norm <= budget) {
      add_head(out.n_rows);
      max_head_rows_ = 0;  // one block: the engine multiplies straight into the logits
    } else {
      add_head(std::max<int64_t>(1, static_cast<int64_t>(std::max(largest, row_bytes) / row_bytes)));
      if (max_head_rows_ >= out.n_rows) max_head_rows_ = 0;  // the head is smaller than a layer: still one block
    }
    for (size_t i = n_layer_units_; i < units_.size(); ++i) largest = std::max(largest, units_[i].bytes);
    total = 0;
    for (const unit& u : units_) total += u.bytes;
  }
  if (mode_ == mode::source_copy && head) {
    largest = std::max(largest, pack_up(row_bytes));
    max_head_rows_ = std::min<int64_t>(out.n_rows, static_cast<int64_t>(largest / row_bytes));
  }
  // A source is always copied through the ring's staging buffers (its head blocks are the source's, and resident
  // layers are uploaded from it on the first pass), so it gets slots even when every layer fits.
  const bool need_ring = mode_ == mode::source_copy || total + norm > budget;
  if (!need_ring) {
    for (unit& u : units_) u.resident = true;
    return {};
  }
  depth_ = std::max(1, cfg_.ring_depth);
  while (depth_ > 1 && norm + static_cast<uint64_t>(depth_) * largest > budget) --depth_;
  if (norm + static_cast<uint64_t>(depth_) * largest > budget)
    return make_error(errc::out_of_memory, "cuda: the device budget leaves " + std::to_string(mib(budget)) +
                                               " MiB for weights; streaming them needs at least " +
                                               std::to_string(mib(norm + largest)) + " MiB (one slot of the largest layer)");
  slot_bytes_ = largest;
  uint64_t left = budget - norm - static_cast<uint64_t>(depth_) * largest;
  for (unit& u : units_) {
    if (u.bytes <= left) {
      u.resident = true;
      left -= u.bytes;
    }
  }
  return {};
}

status cuda_weights::allocate() {
  const bool head = range_.hi == model_->hparams().n_layer;
  if (head) {
    LIME_TRY(norm_dev_, be_->alloc(model_->output_norm().n_bytes));
    stats_.resident_bytes += pack_up(model_->output_norm().n_bytes);
  }
  for (unit& u : units_) {
    ++stats_.units;
    if (u.resident) {
      LIME_TRY(u.dev, be_->alloc(u.bytes));
      bind(u, static_cast<const uint8_t*>(u.dev));
      ++stats_.resident_units;
      stats_.resident_bytes += u.bytes;
    } else {
      stats_.streamed_per_pass += u.bytes;
    }
  }
  for (int32_t s = 0; s < depth_; ++s) {
    LIME_TRY(void* d, be_->alloc(slot_bytes_));
    slots_.push_back(d);
    LIME_TRY(event_handle r, be_->event_create());
    slot_ready_.push_back(r);
    LIME_TRY(event_handle f, be_->event_create());
    slot_free_.push_back(f);
    if (mode_ == mode::source_copy) {
      LIME_TRY(void* h, be_->alloc_host(slot_bytes_));
      staging_.push_back(h);
      stats_.pinned_bytes += slot_bytes_;
      LIME_TRY(event_handle e, be_->event_create());
      staging_done_.push_back(e);
    }
  }
  stats_.slot_bytes = slot_bytes_;
  stats_.ring_depth = depth_;
  if (mode_ != mode::model_views) return {};
  // --- model views: upload the resident units, make page-locked images of the streamed ones
  for (unit& u : units_) {
    if (u.resident) {
      for (size_t j = 0; j < u.host.size(); ++j)
        LIME_TRY_VOID(be_->copy_async(static_cast<uint8_t*>(u.dev) + u.offset[j], u.host[j].data, u.host[j].n_bytes,
                                      copy_kind::host_to_device, compute_));
      u.uploaded = true;
    } else {
      LIME_TRY(u.pinned, be_->alloc_host(u.bytes));
      stats_.pinned_bytes += u.bytes;
      for (size_t j = 0; j < u.host.size(); ++j)
        std::memcpy(static_cast<uint8_t*>(u.pinned) + u.offset[j], u.host[j].data, static_cast<size_t>(u.host[j].n_bytes));
    }
  }
  if (head) {
    const weight_view& n = model_->output_norm();
    LIME_TRY_VOID(be_->copy_async(norm_dev_, n.data, n.n_bytes, copy_kind::host_to_device, compute_));
    norm_uploaded_ = true;
  }
  return be_->synchronize(compute_);  // the model's pages may be read from pageable memory: done before returning
}

void cuda_weights::abort_pass() {
  (void)be_->synchronize(copy_);
  (void)be_->synchronize(compute_);
  preissued_ = 0;  // everything queued has run: the next pass issues from its first unit with fresh tickets
  if (held_layer_ >= 0) src_->release(held_layer_);
  held_layer_ = -1;
  if (head_held_) src_->release_head(head_block_);
  head_held_ = false;
}

cuda_weights::~cuda_weights() {
  if (be_) {
    abort_pass();
    for (unit& u : units_) {
      be_->free(u.dev);
      be_->free_host(u.pinned);
    }
    for (void* s : slots_) be_->free(s);
    for (void* h : staging_) be_->free_host(h);
    for (auto* v : {&slot_ready_, &slot_free_, &staging_done_})
      for (event_handle e : *v) be_->event_destroy(e);
    be_->event_destroy(unit_done_);
    be_->free(norm_dev_);
  }
}

void cuda_weights::bind(unit& u, const uint8_t* base) {
  if (u.layer >= 0) {
    for (size_t j = 0; j < u.host.size(); ++j) {
      weight_view* f = layer_field(u.views, j);
      *f = u.host[j];
      f->data = base + u.offset[j];
    }
  } else {
    u.rows.w = u.host[0];
    u.rows.w.data = base;
    u.rows.row0 = u.row0;
  }
}

int32_t cuda_weights::take_slot() {
  const int32_t s = static_cast<int32_t>(slot_ticket_++ % depth_);
  // The previous user of this slot is done (issue_ahead keeps fewer than depth units in flight), so its slot_free
  // record is the one the copy stream waits for.
  (void)be_->event_wait(copy_, slot_free_[static_cast<size_t>(s)]);
  return s;
}

status cuda_weights::stage_and_copy(const std::vector<const void*>& parts, const std::vector<uint64_t>& sizes,
                                    const std::vector<uint64_t>& offsets, uint64_t bytes, void* dst, event_handle* ready) {
  const size_t s = static_cast<size_t>(staging_ticket_++ % depth_);
  LIME_TRY_VOID(be_->event_synchronize(staging_done_[s]));  // its last copy to the device has finished
  uint8_t* h = static_cast<uint8_t*>(staging_[s]);
  for (size_t j = 0; j < parts.size(); ++j) std::memcpy(h + offsets[j], parts[j], static_cast<size_t>(sizes[j]));
  LIME_TRY_VOID(be_->copy_async(dst, h, bytes, copy_kind::host_to_device, copy_));
  LIME_TRY_VOID(be_->event_record(staging_done_[s], copy_));
  *ready = staging_done_[s];
  return {};
}

status cuda_weights::issue(size_t i) {
  unit& u = units_[i];
  u.wait = nullptr;
  if (mode_ == mode::model_views) {
    if (u.resident) return {};
    u.slot = take_slot();
    const size_t s = static_cast<size_t>(u.slot);
    LIME_TRY_VOID(be_->copy_async(slots_[s], u.pinned, u.bytes, copy_kind::host_to_device, copy_));
    LIME_TRY_VOID(be_->event_record(slot_ready_[s], copy_));
    u.wait = slot_ready_[s];
    bind(u, static_cast<const uint8_t*>(slots_[s]));
    return {};
  }
  // --- source_copy: every layer is acquired in pass order (the source's ring depends on it)
  LIME_TRY(const layer_weights* hw, src_->acquire(u.layer));
  src_->prefetch(u.layer + 1);
  status st;
  if (!u.resident || !u.uploaded) {
    const std::vector<weight_view> views = layer_tensors(*hw);
    std::vector<const void*> parts;
    std::vector<uint64_t> sizes;
    for (size_t j = 0; j < views.size(); ++j) {
      parts.push_back(views[j].data);
      sizes.push_back(std::min(views[j].n_bytes, u.host[j].n_bytes));
    }
    void* dst = u.dev;
    if (!u.resident) {
      u.slot = take_slot();
      dst = slots_[static_cast<size_t>(u.slot)];
      bind(u, static_cast<const uint8_t*>(dst));
    }
    st = stage_and_copy(parts, sizes, u.offset, u.bytes, dst, &u.wait);
    if (st.ok() && u.resident) u.uploaded = true;
  }
  src_->release(u.layer);  // its bytes are in the staging buffer (or already on the device)
  return st;
}

status cuda_weights::issue_ahead() {
  const size_t ahead = static_cast<size_t>(std::max(depth_, 1));
  while (next_issue_ < units_.size() && next_issue_ < n_done_ + ahead) LIME_TRY_VOID(issue(next_issue_++));
  return {};
}

status cuda_weights::done(size_t i) {
  unit& u = units_[i];
  if (!u.resident) LIME_TRY_VOID(be_->event_record(slot_free_[static_cast<size_t>(u.slot)], compute_));
  ++n_done_;
  if (n_done_ == units_.size() && mode_ == mode::model_views && depth_ > 0) {
    // The pass is queued: the next pass's first units start copying now, overlapping the host's work between
    // passes (sampling, the next batch's inputs). Their slots' last users are all done.
    preissued_ = 0;
    while (preissued_ < units_.size() && preissued_ < static_cast<size_t>(depth_)) LIME_TRY_VOID(issue(preissued_++));
    return {};
  }
  return issue_ahead();
}

status cuda_weights::begin_pass() {
  next_issue_ = preissued_;
  preissued_ = 0;
  n_done_ = 0;
  head_block_ = 0;
  head_next_row_ = 0;
  if (mode_ == mode::in_place) return {};
  return issue_ahead();
}

status cuda_weights::bind_in_place(const layer_weights& host) {
  for (size_t j = 0; j < 9; ++j) {
    weight_view* f = layer_field(in_place_, j);
    *f = layer_field(host, j);
    LIME_TRY(f->data, be_->device_address(f->data));
  }
  return {};
}

result<const layer_weights*> cuda_weights::layer(int32_t l) {
  if (mode_ == mode::in_place) {
    LIME_TRY(const layer_weights* hw, src_->acquire(l));
    src_->prefetch(l + 1);
    held_layer_ = l;
    LIME_TRY_VOID(bind_in_place(*hw));
    return &in_place_;
  }
  const size_t i = static_cast<size_t>(l - range_.lo);
  if (i != n_done_ || i >= next_issue_) return make_error(errc::internal, "cuda weights: layers used out of order");
  unit& u = units_[i];
  if (u.wait) LIME_TRY_VOID(be_->event_wait(compute_, u.wait));
  return &u.views;
}

status cuda_weights::layer_done(int32_t l) {
  if (mode_ == mode::in_place) {
    // The source may reuse the layer's buffer once released: its kernels must have run.
    status st = be_->event_record(unit_done_, compute_);
    if (st.ok()) st = be_->event_synchronize(unit_done_);
    src_->release(l);
    held_layer_ = -1;
    return st;
  }
  return done(static_cast<size_t>(l - range_.lo));
}

result<const float*> cuda_weights::output_norm() {
  if (mode_ == mode::in_place) {
    LIME_TRY(const void* d, be_->device_address(src_->output_norm().data));
    return static_cast<const float*>(d);
  }
  if (!norm_uploaded_) {
    const weight_view& n = src_->output_norm();
    LIME_TRY_VOID(be_->copy_async(norm_dev_, n.data, n.n_bytes, copy_kind::host_to_device, compute_));
    LIME_TRY_VOID(be_->synchronize(compute_));  // from pageable memory the source owns
    norm_uploaded_ = true;
  }
  return static_cast<const float*>(norm_dev_);
}

result<weight_rows> cuda_weights::head_next() {
  if (mode_ == mode::model_views) {
    if (n_done_ >= units_.size()) return weight_rows{};
    unit& u = units_[n_done_];
    if (u.wait) LIME_TRY_VOID(be_->event_wait(compute_, u.wait));
    return u.rows;
  }
  // --- a source: its head blocks in order, skipping empty ones
  while (!head_held_) {
    if (head_block_ >= src_->head_blocks()) return weight_rows{};
    LIME_TRY(head_rows_, src_->acquire_head(head_block_));
    if (head_rows_.w.n_rows > 0) {
      head_held_ = true;
      head_next_row_ = 0;
    } else {
      src_->release_head(head_block_++);
    }
  }
  weight_rows r = head_rows_;
  if (mode_ == mode::in_place) {
    LIME_TRY(r.w.data, be_->device_address(head_rows_.w.data));
    return r;
  }
  // source_copy: the block in pieces of at most a slot, each staged and copied into the next slot.
  const uint64_t row_bytes = tensor_row_bytes(r.w.type, r.w.k);
  const int64_t piece = std::min<int64_t>(head_rows_.w.n_rows - head_next_row_, static_cast<int64_t>(slot_bytes_ / row_bytes));
  head_slot_ = take_slot();
  void* dst = slots_[static_cast<size_t>(head_slot_)];
  const void* part = static_cast<const uint8_t*>(head_rows_.w.data) + static_cast<uint64_t>(head_next_row_) * row_bytes;
  event_handle ready = nullptr;
  const status st = stage_and_copy({part}, {static_cast<uint64_t>(piece) * row_bytes}, {0},
                                   pack_up(static_cast<uint64_t>(piece) * row_bytes), dst, &ready);
  r.w.data = dst;
  r.w.n_rows = piece;
  r.w.n_bytes = static_cast<uint64_t>(piece) * row_bytes;
  r.row0 = head_rows_.row0 + head_next_row_;
  head_next_row_ += piece;
  if (head_next_row_ >= head_rows_.w.n_rows) {
    src_->release_head(head_block_++);
    head_held_ = false;
  }
  LIME_TRY_VOID(st);
  LIME_TRY_VOID(be_->event_wait(compute_, ready));
  return r;
}

status cuda_weights::head_done() {
  if (mode_ == mode::model_views) return done(n_done_);
  if (mode_ == mode::source_copy) return be_->event_record(slot_free_[static_cast<size_t>(head_slot_)], compute_);
  status st = be_->event_record(unit_done_, compute_);
  if (st.ok()) st = be_->event_synchronize(unit_done_);
  src_->release_head(head_block_++);
  head_held_ = false;
  return st;
}

}  // namespace lime
#endif
