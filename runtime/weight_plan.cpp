// weight_plan: the residency search (balanced fraction scan, leftover fill, whole-layer prefix), buffer geometry
// (aligned extents, head row blocks, embedding row buffer) and the time estimate used to pick the ring depth.
#include "runtime/weight_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include "runtime/stage.h"

namespace lime {
namespace {

constexpr uint64_t k_merge_gap = 16u << 10;  // file-adjacent pieces closer than this are read as one extent
constexpr int32_t k_scan_steps = 2048;       // grid of the balanced fraction g
constexpr int64_t k_max_head_blocks = 64;    // streamed head rows are cut into at most this many blocks
constexpr int32_t k_max_auto_depth = 6;
constexpr double k_read_latency_s = 60e-6;   // per extent, for the estimate only

uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
uint64_t round_down(uint64_t x, uint64_t a) { return x / a * a; }

struct piece {
  uint64_t off = 0, size = 0;
};

// Aligned extents covering the pieces, neighbours closer than k_merge_gap merged. Returns the buffer bytes.
uint64_t build_extents(std::vector<piece> ps, uint32_t align, std::vector<plan_extent>* out) {
  std::sort(ps.begin(), ps.end(), [](const piece& a, const piece& b) { return a.off < b.off; });
  uint64_t buf = 0;
  for (size_t i = 0; i < ps.size();) {
    const uint64_t a = ps[i].off;
    uint64_t b = a + ps[i].size;
    size_t j = i + 1;
    while (j < ps.size() && ps[j].off <= b + k_merge_gap) b = std::max(b, ps[j].off + ps[j].size), ++j;
    plan_extent e;
    e.file_off = round_down(a, align);
    e.len = round_up(b, align) - e.file_off;
    e.need = b - e.file_off;
    e.buf_off = buf;
    buf += e.len;
    if (out) out->push_back(e);
    i = j;
  }
  return buf;
}

uint64_t file_offset(const model& m, const weight_view& v) {
  return static_cast<uint64_t>(static_cast<const uint8_t*>(v.data) - m.file().file_data());
}

plan_tensor make_tensor(const model& m, weight_role role, const weight_view& v) {
  plan_tensor t;
  t.role = role;
  t.shape = v;
  t.shape.data = nullptr;
  t.file_off = file_offset(m, v);
  t.resident = true;
  return t;
}

struct layer_option {
  uint32_t mask = 0;  // bit i: matrix i of the layer is streamed
  uint64_t stream_bytes = 0, stream_alloc = 0, resident_alloc = 0;
  size_t n_ext = 0;
};

struct layer_info {
  std::vector<plan_tensor> tensors;  // the 9 tensors in weight_role order
  std::vector<size_t> mats;          // indices of the 7 matrices in tensors
  std::vector<layer_option> opts;    // by stream_bytes ascending, one per distinct value (the smallest buffers)
  uint64_t mats_bytes = 0, bytes = 0;
};

struct context {
  const model* m = nullptr;
  weight_plan_config cfg;
  uint64_t page = 4096;
  std::vector<layer_info> layers;
  bool head = false;
  plan_tensor out_norm, out;  // out: the whole output matrix
  uint64_t row_bytes = 0;     // of the output matrix
  bool embd = false;          // range starts at layer 0
  bool embd_tied_head = false;
  plan_tensor tok_embd;
  uint64_t embd_alloc = 0;    // resident token_embd buffer
  uint64_t row_buffer = 0;    // on-demand embedding row buffer
  int32_t row_batch = 0;
  uint64_t row_span = 0;
};

// Split of the output rows: resident [0, r), streamed blocks of `block` rows over [r, n_vocab).
struct candidate {
  std::vector<size_t> opt;  // per layer: index into opts
  int64_t head_rows = 0;    // r
  uint64_t block_target = 0;
  bool embd_resident = false;
  int32_t depth = 1;
};

struct totals {
  uint64_t resident = 0, slot = 0, ring = 0, rowbuf = 0, total = 0, streamed = 0;
  double est = 0;
};

int64_t head_block_rows(const context& c, const candidate& k) {
  const int64_t h = c.out.shape.n_rows - k.head_rows;
  if (h <= 0) return 0;
  const uint64_t a = c.cfg.align;
  int64_t n = k.block_target > 2 * a ? static_cast<int64_t>((k.block_target - 2 * a) / c.row_bytes) : 1;
  n = std::max<int64_t>({n, 1, (h + k_max_head_blocks - 1) / k_max_head_blocks});
  return std::min(n, h);
}

// Buffer bytes of output rows [row0, row0 + n) read as one aligned extent (build_extents of one piece).
uint64_t rows_span(const context& c, int64_t row0, int64_t n) {
  const uint64_t a = c.out.file_off + static_cast<uint64_t>(row0) * c.row_bytes;
  return round_up(a + static_cast<uint64_t>(n) * c.row_bytes, c.cfg.align) - round_down(a, c.cfg.align);
}

// build_extents of {output_norm, rows [0, r)} without allocating (the scan evaluates this many times).
uint64_t head_resident_alloc(const context& c, int64_t r) {
  const uint64_t a = c.cfg.align;
  piece p[2] = {{c.out_norm.file_off, c.out_norm.shape.n_bytes}, {c.out.file_off, static_cast<uint64_t>(r) * c.row_bytes}};
  if (r <= 0) return round_up(round_up(p[0].off + p[0].size, a) - round_down(p[0].off, a), c.page);
  if (p[1].off < p[0].off) std::swap(p[0], p[1]);
  uint64_t bytes;
  if (p[1].off <= p[0].off + p[0].size + k_merge_gap) {
    bytes = round_up(std::max(p[0].off + p[0].size, p[1].off + p[1].size), a) - round_down(p[0].off, a);
  } else {
    bytes = round_up(p[0].off + p[0].size, a) - round_down(p[0].off, a) + round_up(p[1].off + p[1].size, a) - round_down(p[1].off, a);
  }
  return round_up(bytes, c.page);
}

totals evaluate(const context& c, const candidate& k) {
  totals t;
  const double sbw = c.cfg.storage_gbps * 1e9, cbw = c.cfg.compute_gbps * 1e9;
  double sum_io = 0, sum_c = 0, sum_max = 0, sum_serial = 0;
  auto unit = [&](uint64_t stream_alloc, size_t n_ext, uint64_t bytes) {
    const double io = stream_alloc ? static_cast<double>(stream_alloc) / sbw + static_cast<double>(n_ext) * k_read_latency_s : 0.0;
    const double cp = static_cast<double>(bytes) / cbw;
    sum_io += io, sum_c += cp, sum_max += std::max(io, cp), sum_serial += io + cp;
  };
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const layer_option& o = c.layers[l].opts[k.opt[l]];
    t.resident += o.resident_alloc;
    t.slot = std::max(t.slot, o.stream_alloc);
    t.streamed += o.stream_alloc;
    unit(o.stream_alloc, o.n_ext, c.layers[l].bytes);
  }
  if (c.head) {
    t.resident += head_resident_alloc(c, k.head_rows);
    unit(0, 0, c.out_norm.shape.n_bytes + static_cast<uint64_t>(k.head_rows) * c.row_bytes);
    const int64_t n = head_block_rows(c, k);
    for (int64_t r = k.head_rows; n > 0 && r < c.out.shape.n_rows; r += n) {
      const int64_t rows = std::min(n, c.out.shape.n_rows - r);
      const uint64_t span = rows_span(c, r, rows);
      t.slot = std::max(t.slot, span);
      t.streamed += span;
      unit(span, 1, static_cast<uint64_t>(rows) * c.row_bytes);
    }
  }
  if (c.embd && !c.embd_tied_head) {
    if (k.embd_resident) t.resident += c.embd_alloc;
    else t.rowbuf = c.row_buffer;
  }
  if (c.embd && c.embd_tied_head && k.head_rows < c.out.shape.n_rows) t.rowbuf = c.row_buffer;
  t.slot = round_up(t.slot, c.page);
  t.ring = t.slot ? t.slot * static_cast<uint64_t>(k.depth) : 0;
  t.total = t.resident + t.ring + t.rowbuf;
  if (k.depth <= 1) t.est = sum_serial;
  else if (k.depth == 2) t.est = sum_max;
  else t.est = std::max(sum_io, sum_c) + (sum_max - std::max(sum_io, sum_c)) / (k.depth - 1);
  return t;
}

// floor_only: just the option that streams every matrix (weight_plan_floor_budget needs no other).
void build_layer(context& c, int32_t l, bool floor_only = false) {
  const layer_weights& w = c.m->layer(l);
  layer_info li;
  const weight_view* views[] = {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.ffn_norm, &w.w_gate, &w.w_up, &w.w_down};
  for (int i = 0; i < 9; ++i) {
    li.tensors.push_back(make_tensor(*c.m, static_cast<weight_role>(i), *views[i]));
    li.bytes += views[i]->n_bytes;
    if (i != 0 && i != 5) li.mats.push_back(static_cast<size_t>(i)), li.mats_bytes += views[i]->n_bytes;
  }
  std::vector<layer_option> all;
  const uint32_t n_mats = static_cast<uint32_t>(li.mats.size());
  for (uint32_t mask = floor_only ? (1u << n_mats) - 1 : 0; mask < (1u << n_mats); ++mask) {
    // Without preservation only suffixes in role order are streamed: {}, {down}, {up, down}, ...
    const uint32_t low = mask & (~mask + 1u);  // lowest set bit
    if (!c.cfg.preserve && mask != 0 && (mask + low) != (1u << n_mats)) continue;
    std::vector<piece> s, r;
    layer_option o;
    o.mask = mask;
    for (size_t i = 0; i < li.tensors.size(); ++i) {
      const auto it = std::find(li.mats.begin(), li.mats.end(), i);
      const bool streamed = it != li.mats.end() && (mask >> (it - li.mats.begin())) & 1u;
      (streamed ? s : r).push_back({li.tensors[i].file_off, li.tensors[i].shape.n_bytes});
      if (streamed) o.stream_bytes += li.tensors[i].shape.n_bytes;
    }
    std::vector<plan_extent> se, re;
    o.stream_alloc = build_extents(s, c.cfg.align, &se);
    o.resident_alloc = round_up(build_extents(r, c.cfg.align, &re), c.page);
    o.n_ext = se.size() + re.size();
    all.push_back(o);
  }
  std::sort(all.begin(), all.end(), [](const layer_option& a, const layer_option& b) {
    return std::make_tuple(a.stream_bytes, a.stream_alloc + a.resident_alloc, a.n_ext, a.mask) <
           std::make_tuple(b.stream_bytes, b.stream_alloc + b.resident_alloc, b.n_ext, b.mask);
  });
  for (const layer_option& o : all)
    if (li.opts.empty() || li.opts.back().stream_bytes != o.stream_bytes) li.opts.push_back(o);
  c.layers.push_back(std::move(li));
}

context make_context(const model& m, const weight_plan_config& cfg, bool floor_only = false) {
  context c;
  c.m = &m;
  c.cfg = cfg;
  c.page = std::max<uint64_t>(page_bytes(), cfg.align);
  for (int32_t l = cfg.range.lo; l < cfg.range.hi; ++l) build_layer(c, l, floor_only);
  const int32_t n_layer = m.hparams().n_layer;
  c.head = cfg.range.hi == n_layer;
  if (c.head) {
    c.out_norm = make_tensor(m, weight_role::output_norm, m.output_norm());
    c.out = make_tensor(m, weight_role::output_rows, m.output());
    c.row_bytes = m.output().n_bytes / static_cast<uint64_t>(m.output().n_rows);
  }
  c.embd = cfg.range.lo == 0;
  if (c.embd) {
    c.tok_embd = make_tensor(m, weight_role::tok_embd, m.tok_embd());
    c.embd_tied_head = m.tied_embeddings() && c.head;
    c.embd_alloc = round_up(build_extents({{c.tok_embd.file_off, c.tok_embd.shape.n_bytes}}, cfg.align, nullptr), c.page);
    const uint64_t rb = m.tok_embd().n_bytes / static_cast<uint64_t>(m.tok_embd().n_rows);
    c.row_span = (round_up(rb, cfg.align) / cfg.align + 1) * cfg.align;
    c.row_batch = static_cast<int32_t>(std::clamp<uint64_t>((256u << 10) / c.row_span, 1, 16));
    c.row_buffer = round_up(c.row_span * static_cast<uint64_t>(c.row_batch), c.page);
  }
  return c;
}

candidate all_resident(const context& c) {
  candidate k;
  k.opt.assign(c.layers.size(), 0);
  k.head_rows = c.head ? c.out.shape.n_rows : 0;
  k.embd_resident = true;
  k.depth = 0;
  return k;
}

// Balanced scan: the smallest g whose plan fits, then the leftover fill. False when even g = 1 does not fit.
bool search_lime(const context& c, int32_t depth, candidate* best) {
  candidate k;
  k.depth = depth;
  k.opt.assign(c.layers.size(), 0);
  bool found = false;
  for (int32_t i = 0; i <= k_scan_steps && !found; ++i) {
    const double g = static_cast<double>(i) / k_scan_steps;
    uint64_t s_layers = 0;
    for (size_t l = 0; l < c.layers.size(); ++l) {
      const auto& opts = c.layers[l].opts;
      const uint64_t t = static_cast<uint64_t>(std::ceil(g * static_cast<double>(c.layers[l].mats_bytes)));
      size_t j = static_cast<size_t>(std::lower_bound(opts.begin(), opts.end(), t, [](const layer_option& o, uint64_t v) {
                   return o.stream_bytes < v;
                 }) - opts.begin());
      k.opt[l] = std::min(j, opts.size() - 1);
      s_layers = std::max(s_layers, opts[k.opt[l]].stream_alloc);
    }
    if (c.head) {
      const int64_t h = static_cast<int64_t>(std::ceil(g * static_cast<double>(c.out.shape.n_rows)));
      k.head_rows = c.out.shape.n_rows - h;
      k.block_target = s_layers ? s_layers : rows_span(c, k.head_rows, std::max<int64_t>(h, 1));
    }
    for (bool embd_res : {true, false}) {
      if (embd_res && i != 0) continue;
      k.embd_resident = embd_res;
      if (evaluate(c, k).total <= c.cfg.budget) {
        found = true;
        break;
      }
    }
  }
  if (!found) return false;
  // Leftover fill 1: the layers streaming the most step down to their next smaller subset while the plan fits.
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<size_t> order(c.layers.size());
    for (size_t l = 0; l < order.size(); ++l) order[l] = l;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return c.layers[a].opts[k.opt[a]].stream_bytes > c.layers[b].opts[k.opt[b]].stream_bytes;
    });
    for (size_t l : order) {
      if (k.opt[l] == 0) continue;
      --k.opt[l];
      if (evaluate(c, k).total <= c.cfg.budget) changed = true;
      else ++k.opt[l];
    }
  }
  // Leftover fill 2: more resident head rows (total grows with them: the block size is fixed).
  if (c.head) {
    int64_t lo = k.head_rows, hi = c.out.shape.n_rows;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      candidate t = k;
      t.head_rows = mid;
      if (evaluate(c, t).total <= c.cfg.budget) lo = mid;
      else hi = mid - 1;
    }
    k.head_rows = lo;
  }
  *best = k;
  return true;
}

bool search_whole_layer(const context& c, int32_t depth, candidate* best) {
  candidate k;
  k.depth = depth;
  uint64_t s_full = 0;
  for (const layer_info& li : c.layers) s_full = std::max(s_full, li.opts.back().stream_alloc);
  k.block_target = s_full;
  const size_t n = c.layers.size();
  for (size_t kept = n + 1; kept-- > 0;) {
    k.opt.assign(n, 0);
    for (size_t l = kept; l < n; ++l) k.opt[l] = c.layers[l].opts.size() - 1;
    k.head_rows = 0;
    k.embd_resident = false;
    if (evaluate(c, k).total > c.cfg.budget) continue;
    if (c.head) {
      int64_t lo = 0, hi = c.out.shape.n_rows;
      while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        candidate t = k;
        t.head_rows = mid;
        if (evaluate(c, t).total <= c.cfg.budget) lo = mid;
        else hi = mid - 1;
      }
      k.head_rows = lo;
    }
    *best = k;
    return true;
  }
  return false;
}

plan_unit materialize_layer(const context& c, size_t l, const layer_option& o) {
  plan_unit u;
  u.kind = unit_kind::layer;
  u.layer = c.cfg.range.lo + static_cast<int32_t>(l);
  u.tensors = c.layers[l].tensors;
  const auto& mats = c.layers[l].mats;
  std::vector<piece> s, r;
  for (size_t i = 0; i < u.tensors.size(); ++i) {
    const auto it = std::find(mats.begin(), mats.end(), i);
    plan_tensor& t = u.tensors[i];
    t.resident = !(it != mats.end() && (o.mask >> (it - mats.begin())) & 1u);
    (t.resident ? r : s).push_back({t.file_off, t.shape.n_bytes});
    (t.resident ? u.resident_bytes : u.stream_bytes) += t.shape.n_bytes;
  }
  u.stream_alloc = build_extents(s, c.cfg.align, &u.stream_ext);
  u.resident_alloc = round_up(build_extents(r, c.cfg.align, &u.resident_ext), c.page);
  return u;
}

plan_tensor rows_tensor(const context& c, int64_t row0, int64_t n, bool resident) {
  plan_tensor t = c.out;
  t.shape.n_rows = n;
  t.shape.n_bytes = static_cast<uint64_t>(n) * c.row_bytes;
  t.file_off = c.out.file_off + static_cast<uint64_t>(row0) * c.row_bytes;
  t.resident = resident;
  return t;
}

weight_plan materialize(const context& c, const candidate& k) {
  weight_plan p;
  p.policy = c.cfg.policy;
  p.range = c.cfg.range;
  const totals t = evaluate(c, k);
  for (size_t l = 0; l < c.layers.size(); ++l) p.units.push_back(materialize_layer(c, l, c.layers[l].opts[k.opt[l]]));
  if (c.head) {
    p.head_begin = static_cast<int32_t>(p.units.size());
    plan_unit u0;
    u0.kind = unit_kind::head;
    u0.n_rows = k.head_rows;
    u0.tensors.push_back(c.out_norm);
    std::vector<piece> r = {{c.out_norm.file_off, c.out_norm.shape.n_bytes}};
    if (k.head_rows > 0) {
      u0.tensors.push_back(rows_tensor(c, 0, k.head_rows, true));
      r.push_back({c.out.file_off, u0.tensors.back().shape.n_bytes});
    }
    for (const plan_tensor& x : u0.tensors) u0.resident_bytes += x.shape.n_bytes;
    u0.resident_alloc = round_up(build_extents(r, c.cfg.align, &u0.resident_ext), c.page);
    p.units.push_back(u0);
    const int64_t n = head_block_rows(c, k);
    for (int64_t row = k.head_rows; n > 0 && row < c.out.shape.n_rows; row += n) {
      plan_unit u;
      u.kind = unit_kind::head;
      u.row0 = row;
      u.n_rows = std::min(n, c.out.shape.n_rows - row);
      u.tensors.push_back(rows_tensor(c, row, u.n_rows, false));
      u.stream_bytes = u.tensors.back().shape.n_bytes;
      u.stream_alloc = build_extents({{u.tensors.back().file_off, u.stream_bytes}}, c.cfg.align, &u.stream_ext);
      p.units.push_back(u);
    }
    p.head_end = static_cast<int32_t>(p.units.size());
  }
  if (c.embd) {
    p.embd_file_off = c.tok_embd.file_off;
    p.embd_shape = c.tok_embd.shape;
    p.embd_from_head = c.embd_tied_head;
    p.embd_rows_streamed = c.embd_tied_head ? k.head_rows < c.out.shape.n_rows : !k.embd_resident;
    if (!c.embd_tied_head && k.embd_resident) {
      plan_unit u;
      u.kind = unit_kind::embd;
      u.tensors.push_back(c.tok_embd);
      u.resident_bytes = c.tok_embd.shape.n_bytes;
      u.resident_alloc = round_up(build_extents({{c.tok_embd.file_off, u.resident_bytes}}, c.cfg.align, &u.resident_ext), c.page);
      p.embd_unit = static_cast<int32_t>(p.units.size());
      p.units.push_back(u);
    }
    if (p.embd_rows_streamed) {
      p.embd_row_batch = c.row_batch;
      p.embd_row_span = c.row_span;
      p.row_buffer_bytes = c.row_buffer;
    }
  }
  p.slot_bytes = t.slot;
  p.ring_depth = t.slot ? k.depth : 0;
  p.resident_alloc = t.resident;
  p.ring_alloc = t.ring;
  p.total_alloc = t.total;
  p.weight_bytes = stage_weight_bytes(*c.m, c.cfg.range);
  for (const plan_unit& u : p.units) p.resident_bytes += u.resident_bytes, p.streamed_per_pass += u.stream_alloc;
  p.est_seconds = t.est;
  return p;
}

std::string mib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof(s), "%.1f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return s;
}

}  // namespace

uint64_t weight_plan_resident_budget(const model& m, const weight_plan_config& cfg_in) {
  weight_plan_config cfg = cfg_in;
  if (cfg.range.hi == 0) cfg.range = {0, m.hparams().n_layer};
  if (cfg.range.lo < 0 || cfg.range.hi > m.hparams().n_layer || cfg.range.lo >= cfg.range.hi) return 0;
  const context c = make_context(m, cfg);
  return evaluate(c, all_resident(c)).total;
}

uint64_t weight_plan_floor_budget(const model& m, const weight_plan_config& cfg_in) {
  weight_plan_config cfg = cfg_in;
  if (cfg.range.hi == 0) cfg.range = {0, m.hparams().n_layer};
  if (cfg.range.lo < 0 || cfg.range.hi > m.hparams().n_layer || cfg.range.lo >= cfg.range.hi) return 0;
  const context c = make_context(m, cfg, true);
  // search_lime's candidate at g = 1 (every matrix and every head row streamed, token_embd rows on demand) with one
  // slot: the fallback weight_plan_make takes when no read-ahead fits, so it accepts this budget.
  candidate k;
  k.depth = 1;
  k.opt.assign(c.layers.size(), 0);
  uint64_t s_layers = 0;
  for (const layer_info& li : c.layers) s_layers = std::max(s_layers, li.opts[0].stream_alloc);
  if (c.head) k.block_target = s_layers ? s_layers : rows_span(c, 0, std::max<int64_t>(c.out.shape.n_rows, 1));
  return evaluate(c, k).total;
}

result<weight_plan> weight_plan_make(const model& m, const weight_plan_config& cfg_in) {
  weight_plan_config cfg = cfg_in;
  const int32_t n_layer = m.hparams().n_layer;
  if (cfg.range.hi == 0) cfg.range = {0, n_layer};
  if (cfg.range.lo < 0 || cfg.range.hi > n_layer || cfg.range.lo >= cfg.range.hi)
    return make_error(errc::invalid_argument, "weight plan: layer range [" + std::to_string(cfg.range.lo) + ", " +
                                                  std::to_string(cfg.range.hi) + ") is outside the model's " + std::to_string(n_layer) + " layers");
  if (cfg.ring_depth < 0 || cfg.ring_depth > 64) return make_error(errc::invalid_argument, "weight plan: ring depth must be 0 (auto) to 64");
  if (cfg.align < 512 || (cfg.align & (cfg.align - 1)) != 0)
    return make_error(errc::invalid_argument, "weight plan: align must be a power of two >= 512");
  if (!(cfg.storage_gbps > 0) || !(cfg.compute_gbps > 0)) return make_error(errc::invalid_argument, "weight plan: bandwidth estimates must be positive");
  const context c = make_context(m, cfg);
  const candidate full = all_resident(c);
  const totals full_t = evaluate(c, full);
  if (full_t.total <= cfg.budget) return materialize(c, full);
  if (cfg.policy == weight_policy::resident)
    return make_error(errc::out_of_memory, "weight plan: keeping every weight resident needs " + mib(full_t.total) +
                                               " but the budget is " + mib(cfg.budget));
  std::vector<int32_t> depths;
  if (cfg.policy == weight_policy::synchronous) depths = {1};
  else if (cfg.ring_depth > 0) depths = {cfg.ring_depth};
  else if (cfg.policy == weight_policy::whole_layer) depths = {2};
  else for (int32_t d = 2; d <= k_max_auto_depth; ++d) depths.push_back(d);
  bool found = false;
  candidate best;
  double best_est = 0;
  for (int32_t d : depths) {
    candidate k;
    const bool ok = cfg.policy == weight_policy::whole_layer ? search_whole_layer(c, d, &k) : search_lime(c, d, &k);
    if (!ok) continue;
    const double est = evaluate(c, k).est;
    if (!found || est < best_est * 0.995) found = true, best = k, best_est = est;  // ties: the shallower ring
  }
  if (!found && cfg.policy == weight_policy::lime && cfg.ring_depth == 0) {
    // Too tight for read-ahead: one slot (synchronous loading) is the last resort.
    candidate k;
    if (search_lime(c, 1, &k)) found = true, best = k;
  }
  if (!found) {
    // Everything streamed: the smallest ring this policy can run with (for the message).
    candidate k;
    k.depth = cfg.policy == weight_policy::lime && cfg.ring_depth == 0 ? 1 : depths.front();
    k.opt.resize(c.layers.size());
    uint64_t s = 0;
    for (size_t l = 0; l < c.layers.size(); ++l) k.opt[l] = c.layers[l].opts.size() - 1, s = std::max(s, c.layers[l].opts.back().stream_alloc);
    k.block_target = s;
    const totals t = evaluate(c, k);
    return make_error(errc::out_of_memory, "weight plan: a weight budget of " + mib(cfg.budget) + " cannot hold the streaming ring (" +
                                               std::to_string(k.depth) + " x " + mib(t.slot) +
                                               " for the largest layer) plus the norms and buffers; at least " + mib(t.total) +
                                               " is needed for policy " + weight_policy_name(cfg.policy));
  }
  return materialize(c, best);
}

result<uint64_t> weight_plan_min_budget(const model& m, const weight_plan_config& cfg_in) {
  weight_plan_config cfg = cfg_in;
  cfg.budget = weight_plan_resident_budget(m, cfg);
  LIME_TRY(weight_plan top, weight_plan_make(m, cfg));
  (void)top;
  if (cfg.policy == weight_policy::resident) return cfg.budget;
  uint64_t lo = 0, hi = cfg.budget;  // hi fits
  while (lo < hi) {
    cfg.budget = lo + (hi - lo) / 2;
    if (weight_plan_make(m, cfg).ok()) hi = cfg.budget;
    else lo = cfg.budget + 1;
  }
  return hi;
}

}  // namespace lime
