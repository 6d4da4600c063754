// The weights of cuda_forward's layer range as device views, pass by pass. Units (a layer's 9 tensors, a block of
// output-head rows) are either resident in device memory (uploaded once), streamed every pass into a ring of device
// slots on a copy stream (from page-locked host images, or from a weight_source through page-locked staging), with
// events so a unit's copy overlaps the compute of the one before; or, on the unified path, read in place from the
// source's registered host buffers. Owns its device and page-locked memory; never computes. Only with LIME_HAVE_CUDA
// (it is plain C++ over runtime/backend.h, but only cuda_forward uses it). cuda_forward's thread only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/forward.h"
#include "runtime/model.h"
#include "runtime/result.h"

namespace lime {

struct cuda_weights_config {
  uint64_t budget = 0;      // device bytes for resident units + ring slots
  bool in_place = false;    // the source's buffers are registered: kernels read them where they are (unified)
  int32_t ring_depth = 2;   // device slots when streaming (1 when two do not fit)
};

struct cuda_weights_stats {
  int32_t units = 0, resident_units = 0;
  uint64_t resident_bytes = 0;   // device bytes of resident units (and the output norm, always resident)
  uint64_t slot_bytes = 0;       // per ring slot
  int32_t ring_depth = 0;        // 0: nothing streamed
  uint64_t streamed_per_pass = 0;
  uint64_t pinned_bytes = 0;     // page-locked host images and staging
  bool in_place = false;
  std::string describe() const;  // one line
};

class cuda_weights {
 public:
  // src: nullptr reads the model's views. compute/copy: the engine's streams (the copy stream feeds the ring).
  // Errors: out_of_memory (the budget cannot hold one slot of the largest unit: the message gives the minimum),
  // and the backend's.
  static result<std::unique_ptr<cuda_weights>> create(std::shared_ptr<backend> be, const model& m, layer_range range,
                                                      weight_source* src, const cuda_weights_config& cfg,
                                                      stream_handle compute, stream_handle copy);
  // Device bytes create() would need at least for these weights (one slot of the largest unit, or all of them when
  // in place: nothing). For error messages and plans.
  static uint64_t min_device_bytes(const model& m, layer_range range);
  ~cuda_weights();
  cuda_weights(const cuda_weights&) = delete;
  cuda_weights& operator=(const cuda_weights&) = delete;

  // Per pass, in this order: begin_pass (after the source's begin_pass and embed), layer(l) / layer_done(l) for
  // l = lo..hi-1, then when the range ends the model: output_norm(), and head_next() / head_done() until head_next
  // returns an empty block. layer() makes the compute stream wait for the unit's bytes; *_done() is called after the
  // unit's kernels are queued (its slot is reused once they ran).
  status begin_pass();
  result<const layer_weights*> layer(int32_t l);  // device views
  status layer_done(int32_t l);
  result<const float*> output_norm();             // device [n_embd]
  result<weight_rows> head_next();                // device view of rows [row0, row0 + n_rows); n_rows == 0: done
  status head_done();
  // After a failed step: waits for the queued work and releases what the source lent (the next pass starts clean).
  void abort_pass();

  const cuda_weights_stats& stats() const { return stats_; }
  // Rows of the largest head block head_next returns that is not the whole head (the engine's scratch for a split
  // head is sized by it); 0 when the head is one block, or in place (a source's blocks, sized when seen).
  int64_t max_head_rows() const { return max_head_rows_; }

 private:
  enum class mode : uint8_t {
    model_views,  // no source: resident units uploaded at creation, streamed ones from page-locked images
    source_copy,  // a source: its views are copied through page-locked staging (resident: on the first pass)
    in_place      // a source with registered buffers: kernels read them where they are
  };
  struct unit {
    int32_t layer = -1;                // layer units; -1: a block of head rows
    int64_t row0 = 0, n_rows = 0;      // head units
    std::vector<weight_view> host;     // the model's tensors: a layer's 9 in layer_weights order, or the head rows
    std::vector<uint64_t> offset;      // offset of each tensor in the packed image (k_pack_align)
    uint64_t bytes = 0;                // packed image size
    bool resident = false;
    bool uploaded = false;             // resident bytes are on the device
    void* dev = nullptr;               // resident device memory
    void* pinned = nullptr;            // streamed, model views: page-locked host image
    layer_weights views;               // device views (layer units)
    weight_rows rows;                  // device view (head units)
    event_handle wait = nullptr;       // this pass: the compute stream waits on it before using the unit
    int32_t slot = -1;                 // this pass: ring slot (streamed)
  };

  cuda_weights() = default;
  status plan(uint64_t budget);
  status allocate();
  status issue(size_t i);              // starts unit i's bytes on their way (a source is acquired here)
  status issue_ahead();                // issues units while fewer than depth are issued and not done
  status done(size_t i);               // unit i's kernels are queued
  int32_t take_slot();                 // next ring slot; the copy stream waits until its last user's kernels ran
  // Copies the parts (host memory, any kind) into the next page-locked staging buffer at the unit's offsets, then
  // into dst on the copy stream; *ready is the event the compute stream must wait on.
  status stage_and_copy(const std::vector<const void*>& parts, const std::vector<uint64_t>& sizes,
                        const std::vector<uint64_t>& offsets, uint64_t bytes, void* dst, event_handle* ready);
  void bind(unit& u, const uint8_t* base);
  status bind_in_place(const layer_weights& host);

  std::shared_ptr<backend> be_;
  const model* model_ = nullptr;
  layer_range range_;
  weight_source* src_ = nullptr;
  mode mode_ = mode::model_views;
  cuda_weights_config cfg_;
  stream_handle compute_ = nullptr, copy_ = nullptr;
  std::vector<unit> units_;            // layers lo..hi-1, then (model views) blocks of head rows
  size_t n_layer_units_ = 0;
  size_t next_issue_ = 0, n_done_ = 0; // this pass
  size_t preissued_ = 0;               // units of the next pass issued when this one finished (model views)
  int32_t depth_ = 0;                  // ring slots (0: nothing streamed)
  uint64_t slot_bytes_ = 0;
  std::vector<void*> slots_;           // device ring
  std::vector<void*> staging_;         // page-locked staging (source_copy), one per slot
  std::vector<event_handle> slot_ready_, slot_free_, staging_done_;
  int64_t slot_ticket_ = 0, staging_ticket_ = 0;
  event_handle unit_done_ = nullptr;   // in place: the host waits for a unit's kernels before releasing it
  layer_weights in_place_;             // in place: the layer in use, device addresses
  int32_t held_layer_ = -1;            // in place: the source's layer held between layer() and layer_done()
  void* norm_dev_ = nullptr;           // output_norm on the device (copy modes)
  bool norm_uploaded_ = false;
  int64_t max_head_rows_ = 0;
  // Head from a source: the block being consumed.
  int32_t head_block_ = 0;
  bool head_held_ = false;
  weight_rows head_rows_;              // host view of the held block
  int64_t head_next_row_ = 0;          // source_copy: rows of the held block already handed out
  int32_t head_slot_ = -1;             // source_copy: slot of the piece in use
  cuda_weights_stats stats_;
};

}  // namespace lime
