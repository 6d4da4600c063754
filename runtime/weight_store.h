// weight_store: a layer range's weights under a byte budget. Resident tensors live in anonymous memory (mlock'ed
// where permitted) loaded once with O_DIRECT; the others are streamed every pass, unit by unit (a layer's streamed
// tensors, or a block of output-head rows), into a ring of buffers read ahead by I/O threads. Which tensors stay
// is the residency rule of runtime/weight_plan.h. It never touches the model's mapped weight pages, so the page
// cache does not hold them (the model object is used for shapes and file offsets only).
//
// Threads: the weight_source calls, begin_pass and apply_pending come from one compute thread (the forward pass's).
// give_back / take_back / set_budget / stats may come from any thread. Reads run on the store's I/O
// threads only, never on the caller's.
//
// Memory: every byte it holds is accounted (resident buffers rounded to pages, ring slots, the embedding row
// buffer, alignment slack) and stays under the budget. A budget change is planned when asked (it fails, changing
// nothing, if the new budget cannot hold the ring) and applied between passes: freed buffers are released before
// new ones are allocated, so the footprint never exceeds max(old, new) budget.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/direct_reader.h"
#include "runtime/forward.h"
#include "runtime/model.h"
#include "runtime/result.h"
#include "runtime/weight_plan.h"

namespace lime {

struct weight_store_config {
  layer_range range;          // hi == 0: every layer
  uint64_t budget = 0;        // bytes: resident weights + ring + row buffer + slack
  weight_policy policy = weight_policy::lime;
  int32_t ring_depth = 0;     // 0: chosen from the budget (weight_plan_config::ring_depth)
  int32_t io_threads = 2;
  uint64_t io_chunk_bytes = 2ull << 20;
  uint32_t io_align = 4096;
  bool direct_io = true;      // false: pread + DONTNEED (tests the fallback)
  bool lock_memory = true;    // mlock resident buffers and the ring where permitted
  double storage_gbps = 1.1;  // estimates for the automatic ring depth
  double compute_gbps = 8.0;
  bool preserve = true;       // tensor preservation (weight_plan_config::preserve)
  // Called for every buffer the store maps, before anything is read into it, and before it is unmapped: a device
  // backend registers the buffers so its kernels read the weights in place (runtime/backend.h, unified path).
  // An on_map error fails the allocation.
  std::function<status(void* p, uint64_t bytes)> on_map;
  std::function<void(void* p)> on_unmap;
};

struct weight_store_stats {
  weight_policy policy = weight_policy::lime;
  io_mode mode = io_mode::direct;
  std::string mode_note;          // why O_DIRECT is not used; empty when it is
  uint64_t budget = 0;            // current (a pending change not applied yet is not counted)
  uint64_t accounted = 0;         // bytes held now: resident buffers + ring + row buffer
  uint64_t peak_accounted = 0;
  uint64_t resident_bytes = 0;    // tensor bytes resident
  uint64_t resident_alloc = 0;
  uint64_t ring_bytes = 0;
  uint64_t row_buffer_bytes = 0;
  uint64_t locked_bytes = 0;      // of accounted, mlock'ed
  std::string lock_note;          // why some memory is not locked; empty when all is
  int32_t ring_depth = 0;
  uint64_t slot_bytes = 0;
  uint64_t streamed_per_pass = 0; // planned bytes read per pass (embedding rows not counted)
  uint64_t weight_bytes = 0;      // of the range
  uint64_t bytes_streamed = 0;    // read into the ring since create
  uint64_t bytes_rows = 0;        // embedding rows read on demand
  uint64_t bytes_loaded = 0;      // read into resident buffers (create and growth)
  uint64_t n_reads = 0;           // read calls on the I/O threads
  double read_seconds = 0;        // summed over I/O threads
  double wait_seconds = 0;        // the compute thread blocked on reads
  uint64_t n_waits = 0;           // acquires/embeds that blocked
  double hold_seconds = 0;        // units held by the compute thread (acquire returned .. release): compute time
  uint64_t n_acquires = 0;        // of streamed units
  uint64_t n_passes = 0;
  uint64_t n_resizes = 0;         // budget changes applied
  bool resize_pending = false;
};

class weight_store final : public weight_source {
 public:
  // Plans, allocates and loads the resident weights (blocking). path: the model's file (empty: m.file().path());
  // its header must match the model's. Errors: invalid_argument (range, config), out_of_memory (budget too small:
  // the message says the minimum), io_error (open/read, file shorter than the model says), bad_format (the file
  // is not the model's).
  static result<std::unique_ptr<weight_store>> create(const model& m, const std::string& path, const weight_store_config& cfg);
  static weight_plan_config plan_config(const model& m, const weight_store_config& cfg);
  ~weight_store() override;
  weight_store(const weight_store&) = delete;
  weight_store& operator=(const weight_store&) = delete;

  // --- weight_source (compute thread)
  layer_range range() const override { return plan_.range; }
  result<void> begin_pass() override;  // applies a pending budget change, retries a failed install
  result<void> embed(const int32_t* tokens, int64_t n, float* out) override;
  void prefetch(int32_t layer) override;  // tops up the read-ahead (ring order is pass order); no-op when sync
  result<const layer_weights*> acquire(int32_t layer) override;  // io_error when its read failed
  void release(int32_t layer) override;
  const weight_view& output_norm() const override { return output_norm_; }
  int32_t head_blocks() const override;
  result<weight_rows> acquire_head(int32_t block) override;
  void release_head(int32_t block) override;

  // --- memory pressure (any thread). Each returns the new budget or out_of_memory (nothing changes); the change
  // takes effect at the next begin_pass (or apply_pending). give_back(n): budget - n; take_back(n): budget + n.
  result<uint64_t> give_back(uint64_t bytes);
  result<uint64_t> take_back(uint64_t bytes);
  result<uint64_t> set_budget(uint64_t bytes);
  result<void> apply_pending();  // compute thread, nothing acquired

  bool ready(int32_t layer) const;  // acquire(layer) would not block now (compute thread)
  weight_store_stats stats() const;
  const weight_plan& plan() const { return plan_; }  // compute thread

 private:
  weight_store() = default;

  // An anonymous mapping, mlock'ed when permitted; counted in the store's held bytes while it lives.
  struct buffer {
    uint8_t* p = nullptr;
    uint64_t size = 0;  // whole pages
    bool locked = false;
    bool hooked = false;  // on_map succeeded: on_unmap is owed
    weight_store* owner = nullptr;
    buffer() = default;
    buffer(const buffer&) = delete;
    buffer& operator=(const buffer&) = delete;
    ~buffer();
  };
  struct unit_state {
    plan_unit plan;
    std::unique_ptr<buffer> resident;  // the resident extents; nullptr when nothing is resident
    bool loaded = false;               // resident bytes read
    layer_weights views;               // layer units: resident views bound once, streamed ones at each acquire
    weight_rows rows;                  // head and embd units
    int32_t slot = -1;                 // ring slot held between acquire and release
    int64_t acquired_ns = -1;          // steady clock at acquire return; -1 when not held
  };
  struct slot {
    uint8_t* base = nullptr;  // slot_bytes in ring_
    int64_t ticket = -1;      // pass-order ticket it reads or holds; -1: free
    std::shared_ptr<read_batch> batch;
    bool held = false;        // acquired, not released
  };

  result<std::unique_ptr<buffer>> make_buffer(uint64_t size);
  void track(int64_t delta, int64_t locked_delta);
  result<void> check_file();
  result<void> install(weight_plan p);
  result<void> load_missing();
  error not_installed() const;
  void bind_views(unit_state& u, const uint8_t* base, bool streamed);
  result<unit_state*> acquire_unit(size_t idx);
  void release_unit(size_t idx);
  int32_t slot_of(int64_t ticket) const;
  int32_t free_slot() const;
  void issue_ahead();
  void issue(int64_t ticket);
  void resync(size_t idx);
  void drain();
  result<void> read_rows(const std::vector<int32_t>& rows, const std::vector<float*>& outs);

  const model* model_ = nullptr;
  weight_store_config cfg_;
  weight_plan plan_;                                // the installed plan (compute thread)
  std::vector<std::unique_ptr<unit_state>> units_;  // as plan_.units
  std::vector<size_t> stream_seq_;                  // units streamed each pass, in pass order
  std::vector<slot> slots_;
  std::unique_ptr<buffer> ring_, row_buf_;
  int64_t next_issue_ = 0, next_consume_ = 0;       // ticket t reads unit stream_seq_[t % size]
  weight_view output_norm_;
  bool installed_ = false;                          // plan_'s buffers exist and are loaded
  mutable std::mutex mu_;                           // guards pending_, budgets, n_resizes_, summary_
  std::unique_ptr<weight_plan> pending_;
  uint64_t budget_ = 0, pending_budget_ = 0, n_resizes_ = 0;
  weight_store_stats summary_;                      // plan and buffer figures, refreshed by install
  std::atomic<uint64_t> held_{0}, peak_{0}, locked_{0};
  std::atomic<uint64_t> bytes_streamed_{0}, bytes_rows_{0}, bytes_loaded_{0}, n_waits_{0}, n_acquires_{0}, n_passes_{0},
      wait_ns_{0}, hold_ns_{0};
  std::unique_ptr<direct_reader> reader_;  // declared last: destroyed first, before the buffers it reads into
};

}  // namespace lime
