// weight_store, per pass: the ring of streaming slots (pass-order tickets, read-ahead, resync after an
// out-of-order acquire or a failed read), acquire/release of layers and head blocks, and embedding rows.
// Compute thread only; the reads themselves run on the direct_reader's threads.
#include <algorithm>
#include <chrono>

#include "kernels/cpu/get_rows.h"
#include "runtime/weight_store.h"

namespace lime {

error weight_store::not_installed() const {
  return make_error(errc::io_error, "weight_store: the resident weights are not loaded (a read failed; the next pass retries)");
}

int32_t weight_store::slot_of(int64_t ticket) const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].ticket == ticket) return static_cast<int32_t>(i);
  return -1;
}

int32_t weight_store::free_slot() const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].ticket < 0) return static_cast<int32_t>(i);
  return -1;
}

void weight_store::issue(int64_t ticket) {
  const int32_t si = free_slot();
  if (si < 0 || stream_seq_.empty()) return;
  slot& s = slots_[static_cast<size_t>(si)];
  const unit_state& u = *units_[stream_seq_[static_cast<size_t>(ticket % static_cast<int64_t>(stream_seq_.size()))]];
  std::vector<read_request> reqs;
  uint64_t bytes = 0;
  for (const plan_extent& e : u.plan.stream_ext) {
    reqs.push_back(read_request{e.file_off, e.len, e.need, s.base + e.buf_off});
    bytes += e.len;
  }
  bytes_streamed_.fetch_add(bytes, std::memory_order_relaxed);
  s.ticket = ticket;
  s.held = false;
  s.batch = reader_->submit(reqs);
}

// Keeps every free slot reading the next units in pass order (wrapping into the next pass).
void weight_store::issue_ahead() {
  if (plan_.policy == weight_policy::synchronous || stream_seq_.empty()) return;
  while (next_issue_ < next_consume_ + static_cast<int64_t>(slots_.size()) && free_slot() >= 0) issue(next_issue_++);
}

// Drops every read that is not held: queued chunks are skipped, running ones finish into their slot first.
void weight_store::drain() {
  for (slot& s : slots_)
    if (!s.held && s.batch) direct_reader::cancel(*s.batch);
  for (slot& s : slots_) {
    if (s.held) continue;
    if (s.batch) (void)s.batch->wait();
    s.batch.reset();
    s.ticket = -1;
  }
}

// The caller asked for a unit that is not next in pass order (an aborted pass, a different use pattern): forget
// the read-ahead and restart the sequence at that unit.
void weight_store::resync(size_t idx) {
  drain();
  const int64_t n = static_cast<int64_t>(stream_seq_.size());
  const int64_t pos = std::find(stream_seq_.begin(), stream_seq_.end(), idx) - stream_seq_.begin();
  const int64_t t = (std::max(next_issue_, next_consume_) / n + 1) * n + pos;
  next_issue_ = next_consume_ = t;
}

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

result<weight_store::unit_state*> weight_store::acquire_unit(size_t idx) {
  if (!installed_) return not_installed();
  unit_state& u = *units_[idx];
  if (!u.plan.streamed()) {
    u.acquired_ns = now_ns();
    return &u;
  }
  if (u.slot >= 0) return make_error(errc::invalid_argument, "weight_store: unit acquired twice without release");
  n_acquires_.fetch_add(1, std::memory_order_relaxed);
  const int64_t n = static_cast<int64_t>(stream_seq_.size());
  if (stream_seq_[static_cast<size_t>(next_consume_ % n)] != idx) resync(idx);
  int32_t si = slot_of(next_consume_);
  if (si < 0) {
    if (free_slot() < 0) return make_error(errc::invalid_argument, "weight_store: every ring slot is held; release layers first");
    issue(next_consume_);
    next_issue_ = std::max(next_issue_, next_consume_ + 1);
    si = slot_of(next_consume_);
  }
  slot& s = slots_[static_cast<size_t>(si)];
  status st;
  if (!s.batch->done()) {
    const auto t0 = std::chrono::steady_clock::now();
    st = s.batch->wait();
    wait_ns_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count()),
                       std::memory_order_relaxed);
    n_waits_.fetch_add(1, std::memory_order_relaxed);
  } else {
    st = s.batch->wait();
  }
  if (!st.ok()) {
    // Forget this slot and everything read ahead: the next acquire reads again (the file may be back).
    s.batch.reset();
    s.ticket = -1;
    drain();
    next_issue_ = next_consume_ = 0;
    return st.err();
  }
  s.held = true;
  u.slot = si;
  ++next_consume_;
  bind_views(u, s.base, true);
  issue_ahead();
  u.acquired_ns = now_ns();
  return &u;
}

void weight_store::release_unit(size_t idx) {
  unit_state& u = *units_[idx];
  if (u.acquired_ns >= 0) hold_ns_.fetch_add(static_cast<uint64_t>(now_ns() - u.acquired_ns), std::memory_order_relaxed);
  u.acquired_ns = -1;
  if (u.slot < 0) return;
  slot& s = slots_[static_cast<size_t>(u.slot)];
  s.held = false;
  s.ticket = -1;
  s.batch.reset();
  u.slot = -1;
  issue_ahead();
}

void weight_store::prefetch(int32_t /*layer*/) { issue_ahead(); }

result<const layer_weights*> weight_store::acquire(int32_t layer) {
  if (layer < plan_.range.lo || layer >= plan_.range.hi)
    return make_error(errc::invalid_argument, "weight_store: layer " + std::to_string(layer) + " is outside the store's range");
  LIME_TRY(unit_state * u, acquire_unit(static_cast<size_t>(layer - plan_.range.lo)));
  return &u->views;
}

void weight_store::release(int32_t layer) {
  if (layer >= plan_.range.lo && layer < plan_.range.hi) release_unit(static_cast<size_t>(layer - plan_.range.lo));
}

int32_t weight_store::head_blocks() const { return plan_.head_begin < 0 ? 0 : plan_.head_end - plan_.head_begin; }

result<weight_rows> weight_store::acquire_head(int32_t block) {
  if (block < 0 || block >= head_blocks()) return make_error(errc::invalid_argument, "weight_store: no such head block");
  LIME_TRY(unit_state * u, acquire_unit(static_cast<size_t>(plan_.head_begin + block)));
  return u->rows;
}

void weight_store::release_head(int32_t block) {
  if (block >= 0 && block < head_blocks()) release_unit(static_cast<size_t>(plan_.head_begin + block));
}

bool weight_store::ready(int32_t layer) const {
  if (layer < plan_.range.lo || layer >= plan_.range.hi) return false;
  if (!installed_) return false;
  const unit_state& u = *units_[static_cast<size_t>(layer - plan_.range.lo)];
  if (!u.plan.streamed() || u.slot >= 0) return true;
  const int64_t n = static_cast<int64_t>(stream_seq_.size());
  if (stream_seq_[static_cast<size_t>(next_consume_ % n)] != static_cast<size_t>(layer - plan_.range.lo)) return false;
  const int32_t si = slot_of(next_consume_);
  return si >= 0 && slots_[static_cast<size_t>(si)].batch->done();
}

// --- embeddings

// Reads token_embd rows `rows` (on the I/O threads, ahead of queued ring reads) and dequantizes row i into outs[i].
result<void> weight_store::read_rows(const std::vector<int32_t>& rows, const std::vector<float*>& outs) {
  const weight_view& e = plan_.embd_shape;
  const uint64_t rb = e.n_bytes / static_cast<uint64_t>(e.n_rows), a = cfg_.io_align;
  const size_t batch = static_cast<size_t>(plan_.embd_row_batch);
  std::vector<read_request> reqs;
  std::vector<const uint8_t*> src;
  for (size_t b0 = 0; b0 < rows.size(); b0 += batch) {
    const size_t b1 = std::min(rows.size(), b0 + batch);
    reqs.clear();
    src.clear();
    uint64_t bytes = 0;
    for (size_t i = b0; i < b1; ++i) {
      const uint64_t off = plan_.embd_file_off + static_cast<uint64_t>(rows[i]) * rb;
      read_request r;
      r.file_off = off / a * a;
      r.len = (off + rb + a - 1) / a * a - r.file_off;
      r.need = off + rb - r.file_off;
      r.dst = row_buf_->p + (i - b0) * plan_.embd_row_span;
      src.push_back(r.dst + (off - r.file_off));
      reqs.push_back(r);
      bytes += r.len;
    }
    bytes_rows_.fetch_add(bytes, std::memory_order_relaxed);
    const auto t0 = std::chrono::steady_clock::now();
    const status st = reader_->submit(reqs, true)->wait();
    wait_ns_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count()),
                       std::memory_order_relaxed);
    n_waits_.fetch_add(1, std::memory_order_relaxed);
    if (!st.ok()) return st.err();
    const int32_t zero = 0;
    for (size_t i = b0; i < b1; ++i) (void)cpu::get_rows_ref(e.type, src[i - b0], 1, e.k, &zero, 1, outs[i]);
  }
  return {};
}

result<void> weight_store::embed(const int32_t* tokens, int64_t n, float* out) {
  if (plan_.range.lo != 0) return make_error(errc::invalid_argument, "weight_store: embeddings are held by the stage with layer 0");
  if (!installed_) return not_installed();
  const weight_view& e = plan_.embd_shape;
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= e.n_rows) return make_error(errc::invalid_argument, "weight_store: token id out of range");
  if (plan_.embd_unit >= 0) {
    const unit_state& u = *units_[static_cast<size_t>(plan_.embd_unit)];
    (void)cpu::get_rows_ref(e.type, u.rows.w.data, e.n_rows, e.k, tokens, n, out);
    return {};
  }
  // Tied embeddings held with the head: rows below the head's resident rows are in its buffer.
  const unit_state* head = plan_.embd_from_head ? units_[static_cast<size_t>(plan_.head_begin)].get() : nullptr;
  const int64_t resident_rows = head ? head->rows.w.n_rows : 0;
  std::vector<int32_t> rows;
  std::vector<float*> outs;
  for (int64_t i = 0; i < n; ++i) {
    float* dst = out + i * e.k;
    if (tokens[i] < resident_rows) {
      (void)cpu::get_rows_ref(e.type, head->rows.w.data, resident_rows, e.k, &tokens[i], 1, dst);
    } else {
      rows.push_back(tokens[i]);
      outs.push_back(dst);
    }
  }
  if (rows.empty()) return {};
  if (!row_buf_) return make_error(errc::internal, "weight_store: embedding rows must be read but no row buffer was planned");
  return read_rows(rows, outs);
}

}  // namespace lime
