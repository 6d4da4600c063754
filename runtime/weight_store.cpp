// weight_store: creation (plan, file check, resident loads), buffers (anonymous, mlock'ed, accounted), budget
// changes (planned at once, installed between passes) and stats. The per-pass ring is in weight_store_ring.cpp.
#include "runtime/weight_store.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>


namespace lime {

// --- buffers

weight_store::buffer::~buffer() {
  if (!p) return;
  if (hooked && owner && owner->cfg_.on_unmap) owner->cfg_.on_unmap(p);
  if (locked) ::munlock(p, size);
  ::munmap(p, size);
  if (owner) owner->track(-static_cast<int64_t>(size), locked ? -static_cast<int64_t>(size) : 0);
}

result<std::unique_ptr<weight_store::buffer>> weight_store::make_buffer(uint64_t size) {
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return make_error(errc::out_of_memory, "weight_store: cannot map " + std::to_string(size) + " bytes: " + std::strerror(errno));
  auto b = std::make_unique<buffer>();
  b->p = static_cast<uint8_t*>(p);
  b->size = size;
  b->owner = this;
  if (cfg_.lock_memory) {
    if (::mlock(p, static_cast<size_t>(size)) == 0) {
      b->locked = true;
    } else {
      std::lock_guard<std::mutex> lk(mu_);
      if (summary_.lock_note.empty())
        summary_.lock_note = std::string("mlock failed: ") + std::strerror(errno) + " (RLIMIT_MEMLOCK or no CAP_IPC_LOCK)";
    }
  }
  track(static_cast<int64_t>(size), b->locked ? static_cast<int64_t>(size) : 0);
  if (cfg_.on_map) {
    LIME_TRY_VOID(cfg_.on_map(b->p, size));
    b->hooked = true;
  }
  return b;
}

void weight_store::track(int64_t delta, int64_t locked_delta) {
  const uint64_t now = held_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed) + static_cast<uint64_t>(delta);
  locked_.fetch_add(static_cast<uint64_t>(locked_delta), std::memory_order_relaxed);
  uint64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {}
}

// --- creation

weight_plan_config weight_store::plan_config(const model& m, const weight_store_config& cfg) {
  weight_plan_config p;
  p.range = cfg.range.hi == 0 ? layer_range{0, m.hparams().n_layer} : cfg.range;
  p.budget = cfg.budget;
  p.policy = cfg.policy;
  p.ring_depth = cfg.ring_depth;
  p.align = cfg.io_align;
  p.storage_gbps = cfg.storage_gbps;
  p.compute_gbps = cfg.compute_gbps;
  p.preserve = cfg.preserve;
  return p;
}

result<std::unique_ptr<weight_store>> weight_store::create(const model& m, const std::string& path_in, const weight_store_config& cfg) {
  const std::string path = path_in.empty() ? m.file().path() : path_in;
  if (path.empty()) return make_error(errc::invalid_argument, "weight_store: the model was not loaded from a file; give its path");
  if (cfg.io_threads < 1 || cfg.io_threads > 64) return make_error(errc::invalid_argument, "weight_store: io_threads must be 1..64");
  LIME_TRY(weight_plan plan, weight_plan_make(m, plan_config(m, cfg)));
  std::unique_ptr<weight_store> s(new weight_store());
  s->model_ = &m;
  s->cfg_ = cfg;
  s->cfg_.range = plan.range;
  s->budget_ = cfg.budget;
  direct_reader_config rc;
  rc.n_threads = cfg.io_threads;
  rc.chunk_bytes = std::max<uint64_t>(cfg.io_align, cfg.io_chunk_bytes / cfg.io_align * cfg.io_align);
  rc.align = cfg.io_align;
  rc.try_direct = cfg.direct_io;
  LIME_TRY(s->reader_, direct_reader::open(path, rc));
  LIME_TRY_VOID(s->check_file());
  LIME_TRY_VOID(s->install(std::move(plan)));
  return s;
}

// The file must be the model's: same size and the same header bytes (metadata and tensor table).
result<void> weight_store::check_file() {
  const gguf_file& f = model_->file();
  if (reader_->file_size() != f.file_size())
    return make_error(errc::bad_format, "weight_store: '" + reader_->path() + "' has " + std::to_string(reader_->file_size()) +
                                            " bytes but the model's file has " + std::to_string(f.file_size()));
  // Compared in 64 KiB pieces through a small buffer (it is held before any weight, so it fits any budget).
  const uint64_t piece = std::max<uint64_t>(64u << 10, cfg_.io_align);
  const uint64_t n = std::min<uint64_t>(f.data_offset(), 4u << 20);
  if (n == 0) return {};
  LIME_TRY(std::unique_ptr<buffer> tmp, make_buffer(piece));
  for (uint64_t off = 0; off < n; off += piece) {
    const uint64_t need = std::min(piece, n - off);
    LIME_TRY_VOID(reader_->submit({read_request{off, piece, need, tmp->p}}, true)->wait());
    if (std::memcmp(tmp->p, f.file_data() + off, static_cast<size_t>(need)) != 0)
      return make_error(errc::bad_format, "weight_store: '" + reader_->path() + "' is not the model's file (its header differs)");
  }
  return {};
}

weight_store::~weight_store() {
  if (reader_) {
    for (slot& s : slots_)
      if (s.batch) direct_reader::cancel(*s.batch);
    reader_.reset();  // joins the I/O threads before any buffer goes away
  }
}

// --- installing a plan

namespace {
bool same_resident(const plan_unit& a, const plan_unit& b) {
  if (a.kind != b.kind || a.layer != b.layer || a.resident_ext.size() != b.resident_ext.size()) return false;
  for (size_t i = 0; i < a.resident_ext.size(); ++i)
    if (a.resident_ext[i].file_off != b.resident_ext[i].file_off || a.resident_ext[i].len != b.resident_ext[i].len) return false;
  return a.resident_alloc == b.resident_alloc;
}
}  // namespace

result<void> weight_store::install(weight_plan p) {
  for (const slot& s : slots_)
    if (s.held) return make_error(errc::invalid_argument, "weight_store: release every layer before a budget change is applied");
  // Everything read ahead is dropped, then buffers the new plan does not keep are freed, and only then are the new
  // ones allocated: the footprint never exceeds max(old, new). Until this returns ok, acquire and embed fail, and
  // the next begin_pass installs the plan again (keeping what was loaded).
  installed_ = false;
  drain();
  slots_.clear();
  ring_.reset();
  row_buf_.reset();
  std::vector<std::unique_ptr<unit_state>> next;
  for (const plan_unit& pu : p.units) {
    auto u = std::make_unique<unit_state>();
    u->plan = pu;
    for (auto& old : units_) {
      if (old && old->resident && same_resident(old->plan, pu)) {
        u->resident = std::move(old->resident);
        u->loaded = old->loaded;
        break;
      }
    }
    next.push_back(std::move(u));
  }
  units_.clear();  // frees what was not moved
  units_ = std::move(next);
  plan_ = std::move(p);
  output_norm_ = weight_view{};
  stream_seq_.clear();
  next_issue_ = next_consume_ = 0;
  for (size_t i = 0; i < units_.size(); ++i) {
    unit_state& u = *units_[i];
    if (u.plan.resident_alloc > 0 && !u.resident) {
      LIME_TRY(u.resident, make_buffer(u.plan.resident_alloc));
      u.loaded = false;
    }
    if (u.plan.streamed()) stream_seq_.push_back(i);
  }
  if (plan_.ring_depth > 0 && plan_.slot_bytes > 0) {
    LIME_TRY(ring_, make_buffer(plan_.slot_bytes * static_cast<uint64_t>(plan_.ring_depth)));
    slots_.resize(static_cast<size_t>(plan_.ring_depth));
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].base = ring_->p + i * plan_.slot_bytes;
  }
  if (plan_.row_buffer_bytes > 0) {
    LIME_TRY(row_buf_, make_buffer(plan_.row_buffer_bytes));
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    summary_.policy = plan_.policy;
    summary_.mode = reader_->mode();
    summary_.mode_note = reader_->mode_note();
    summary_.resident_bytes = plan_.resident_bytes;
    summary_.resident_alloc = plan_.resident_alloc;
    summary_.ring_bytes = ring_ ? ring_->size : 0;
    summary_.row_buffer_bytes = row_buf_ ? row_buf_->size : 0;
    summary_.ring_depth = static_cast<int32_t>(slots_.size());
    summary_.slot_bytes = plan_.slot_bytes;
    summary_.streamed_per_pass = plan_.streamed_per_pass;
    summary_.weight_bytes = plan_.weight_bytes;
  }
  LIME_TRY_VOID(load_missing());
  installed_ = true;
  return {};
}

// Reads every resident buffer not loaded yet (on the I/O threads; the caller waits), then binds resident views.
result<void> weight_store::load_missing() {
  std::vector<read_request> reqs;
  uint64_t bytes = 0;
  for (auto& up : units_) {
    unit_state& u = *up;
    if (!u.resident || u.loaded) continue;
    for (const plan_extent& e : u.plan.resident_ext) {
      reqs.push_back(read_request{e.file_off, e.len, e.need, u.resident->p + e.buf_off});
      bytes += e.len;
    }
  }
  if (!reqs.empty()) {
    bytes_loaded_.fetch_add(bytes, std::memory_order_relaxed);
    LIME_TRY_VOID(reader_->submit(reqs, true)->wait());
  }
  for (auto& up : units_) {
    unit_state& u = *up;
    u.loaded = u.resident != nullptr;
    bind_views(u, u.resident ? u.resident->p : nullptr, false);
  }
  return {};
}

// Points the views of the unit's resident (streamed = false) or streamed tensors into `base`, laid out as the
// plan's extents say. A tensor starts at the same offset within its extent as in the file.
void weight_store::bind_views(unit_state& u, const uint8_t* base, bool streamed) {
  const auto& exts = streamed ? u.plan.stream_ext : u.plan.resident_ext;
  for (const plan_tensor& t : u.plan.tensors) {
    if (t.resident == streamed) continue;
    const uint8_t* data = nullptr;
    for (const plan_extent& e : exts)
      if (t.file_off >= e.file_off && t.file_off + t.shape.n_bytes <= e.file_off + e.need) data = base + e.buf_off + (t.file_off - e.file_off);
    weight_view v = t.shape;
    v.data = data;
    switch (t.role) {
      case weight_role::attn_norm: u.views.attn_norm = v; break;
      case weight_role::wq: u.views.wq = v; break;
      case weight_role::wk: u.views.wk = v; break;
      case weight_role::wv: u.views.wv = v; break;
      case weight_role::wo: u.views.wo = v; break;
      case weight_role::ffn_norm: u.views.ffn_norm = v; break;
      case weight_role::w_gate: u.views.w_gate = v; break;
      case weight_role::w_up: u.views.w_up = v; break;
      case weight_role::w_down: u.views.w_down = v; break;
      case weight_role::output_norm: output_norm_ = v; break;
      case weight_role::output_rows:
      case weight_role::tok_embd: u.rows.w = v; u.rows.row0 = u.plan.row0; break;
    }
  }
}

// --- budget changes

result<uint64_t> weight_store::set_budget(uint64_t bytes) {
  weight_store_config c;
  {
    std::lock_guard<std::mutex> lk(mu_);
    c = cfg_;
  }
  c.budget = bytes;
  LIME_TRY(weight_plan p, weight_plan_make(*model_, plan_config(*model_, c)));
  std::lock_guard<std::mutex> lk(mu_);
  pending_ = std::make_unique<weight_plan>(std::move(p));
  pending_budget_ = bytes;
  return bytes;
}

result<uint64_t> weight_store::give_back(uint64_t bytes) {
  uint64_t now;
  {
    std::lock_guard<std::mutex> lk(mu_);
    now = pending_ ? pending_budget_ : budget_;
  }
  if (bytes > now) return make_error(errc::out_of_memory, "weight_store: cannot give back more than the whole budget");
  return set_budget(now - bytes);
}

result<uint64_t> weight_store::take_back(uint64_t bytes) {
  uint64_t now;
  {
    std::lock_guard<std::mutex> lk(mu_);
    now = pending_ ? pending_budget_ : budget_;
  }
  return set_budget(now + bytes);
}

result<void> weight_store::apply_pending() {
  std::unique_ptr<weight_plan> p;
  uint64_t b = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    p = std::move(pending_);
    b = pending_budget_;
  }
  if (p) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      budget_ = b;
      cfg_.budget = b;
      ++n_resizes_;
    }
    return install(std::move(*p));
  }
  if (!installed_) return install(weight_plan(plan_));
  return {};
}

result<void> weight_store::begin_pass() {
  n_passes_.fetch_add(1, std::memory_order_relaxed);
  return apply_pending();
}

weight_store_stats weight_store::stats() const {
  weight_store_stats s;
  {
    std::lock_guard<std::mutex> lk(mu_);
    s = summary_;
    s.budget = budget_;
    s.resize_pending = pending_ != nullptr;
    s.n_resizes = n_resizes_;
  }
  s.accounted = held_.load(std::memory_order_relaxed);
  s.peak_accounted = peak_.load(std::memory_order_relaxed);
  s.locked_bytes = locked_.load(std::memory_order_relaxed);
  s.bytes_streamed = bytes_streamed_.load(std::memory_order_relaxed);
  s.bytes_rows = bytes_rows_.load(std::memory_order_relaxed);
  s.bytes_loaded = bytes_loaded_.load(std::memory_order_relaxed);
  s.n_reads = reader_->n_reads();
  s.read_seconds = reader_->read_seconds();
  s.wait_seconds = static_cast<double>(wait_ns_.load(std::memory_order_relaxed)) * 1e-9;
  s.n_waits = n_waits_.load(std::memory_order_relaxed);
  s.hold_seconds = static_cast<double>(hold_ns_.load(std::memory_order_relaxed)) * 1e-9;
  s.n_acquires = n_acquires_.load(std::memory_order_relaxed);
  s.n_passes = n_passes_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace lime
