// Layer placement: budget-proportional contiguous split with repair, the "NAME=LO-HI,..." flag format, and the
// size strings of memory flags. Pure functions: no I/O, no logging.
#include "runtime/placement.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace lime {
namespace {

using u128 = unsigned __int128;
using i128 = __int128;

// Weight + KV bytes of contiguous layer ranges of one model.
class range_cost {
 public:
  explicit range_cost(const model_footprint& fp) : fp_(fp), n_(static_cast<int32_t>(fp.layer_bytes.size())) {
    prefix_.assign(fp.layer_bytes.size() + 1, 0);
    for (size_t i = 0; i < fp.layer_bytes.size(); ++i) prefix_[i + 1] = prefix_[i] + fp.layer_bytes[i];
  }
  int32_t n_layer() const { return n_; }
  // Bytes a node holding [lo, hi) needs; 0 for an empty range.
  uint64_t operator()(int32_t lo, int32_t hi) const {
    if (lo >= hi) return 0;
    if (fp_.range_bytes) return fp_.range_bytes(lo, hi);
    uint64_t c = prefix_[static_cast<size_t>(hi)] - prefix_[static_cast<size_t>(lo)] +
                 fp_.kv_bytes_per_layer * static_cast<uint64_t>(hi - lo);
    if (lo == 0) c += fp_.embd_bytes;
    if (hi == n_) c += fp_.head_bytes;
    if (fp_.tied && lo == 0 && hi == n_) c -= std::min(fp_.embd_bytes, fp_.head_bytes);  // one token_embd
    return c;
  }

 private:
  const model_footprint& fp_;
  int32_t n_;
  std::vector<uint64_t> prefix_;  // [n_layer + 1] running sum of layer_bytes
};

// Layer counts proportional to the budgets by largest remainder (ties: the earlier node); when there are at least
// as many layers as nodes every node gets one, taken from the node furthest above its exact share.
std::vector<int32_t> proportional_counts(int32_t n, const std::vector<uint64_t>& budgets) {
  const size_t k = budgets.size();
  u128 total = 0;
  for (uint64_t b : budgets) total += b;
  std::vector<int32_t> c(k, 0);
  std::vector<u128> rem(k, 0);
  int32_t given = 0;
  for (size_t i = 0; i < k; ++i) {
    const u128 x = static_cast<u128>(n) * budgets[i];
    c[i] = static_cast<int32_t>(x / total);
    rem[i] = x % total;
    given += c[i];
  }
  for (; given < n; ++given) {
    size_t best = 0;
    for (size_t i = 1; i < k; ++i)
      if (rem[i] > rem[best]) best = i;
    ++c[best];
    rem[best] = 0;  // each node gets at most one extra layer
  }
  if (static_cast<size_t>(n) >= k) {
    for (size_t i = 0; i < k; ++i) {
      if (c[i] > 0) continue;
      size_t from = k;
      i128 most = 0;
      for (size_t j = 0; j < k; ++j) {
        if (c[j] < 2) continue;
        const i128 over = static_cast<i128>(c[j]) * static_cast<i128>(total) - static_cast<i128>(n) * budgets[j];
        if (from == k || over > most) { from = j; most = over; }
      }
      --c[from];
      ++c[i];
    }
  }
  return c;
}

bool all_fit(const range_cost& cost, const std::vector<int32_t>& bnd, const std::vector<uint64_t>& budgets) {
  for (size_t i = 0; i < budgets.size(); ++i)
    if (cost(bnd[i], bnd[i + 1]) > budgets[i]) return false;
  return true;
}

// Moves boundary layers from over-budget nodes to an adjacent node that still fits after taking the layer (the one
// left with more room). Gives up when an over-budget node has no such neighbour.
bool repair(const range_cost& cost, std::vector<int32_t>& bnd, const std::vector<uint64_t>& budgets) {
  const size_t k = budgets.size();
  const size_t max_moves = static_cast<size_t>(cost.n_layer()) * k + 1;
  for (size_t move = 0; move < max_moves; ++move) {
    size_t i = 0;
    while (i < k && cost(bnd[i], bnd[i + 1]) <= budgets[i]) ++i;
    if (i == k) return true;
    bool left_ok = false, right_ok = false;
    uint64_t left_room = 0, right_room = 0;
    if (i > 0 && bnd[i] < bnd[i + 1]) {  // node i-1 takes node i's first layer
      const uint64_t c = cost(bnd[i - 1], bnd[i] + 1);
      left_ok = c <= budgets[i - 1];
      left_room = left_ok ? budgets[i - 1] - c : 0;
    }
    if (i + 1 < k && bnd[i] < bnd[i + 1]) {  // node i+1 takes node i's last layer
      const uint64_t c = cost(bnd[i + 1] - 1, bnd[i + 2]);
      right_ok = c <= budgets[i + 1];
      right_room = right_ok ? budgets[i + 1] - c : 0;
    }
    if (!left_ok && !right_ok) return false;
    if (left_ok && (!right_ok || left_room >= right_room)) ++bnd[i];
    else --bnd[i + 1];
  }
  return all_fit(cost, bnd, budgets);
}

// Each node in order takes as many layers as fit. Cost only grows with the range, so this reaches furthest of all
// contiguous splits: when it does not cover the model, no contiguous split does.
bool greedy_fill(const range_cost& cost, std::vector<int32_t>& bnd, const std::vector<uint64_t>& budgets) {
  const int32_t n = cost.n_layer();
  for (size_t i = 0; i < budgets.size(); ++i) {
    int32_t hi = bnd[i];
    while (hi < n && cost(bnd[i], hi + 1) <= budgets[i]) ++hi;
    bnd[i + 1] = hi;
  }
  return bnd.back() == n;
}

bool parse_int(const std::string& s, int32_t* out) {
  if (s.empty() || s.size() > 9) return false;
  int32_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *out = v;
  return true;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
  return s.substr(a, b - a);
}

}  // namespace

model_footprint footprint_of(const model& m, uint64_t kv_bytes_per_layer) {
  model_footprint fp;
  for (int32_t i = 0; i < m.hparams().n_layer; ++i) {
    const layer_weights& l = m.layer(i);
    uint64_t n = 0;
    for (const weight_view* w : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      n += w->n_bytes;
    fp.layer_bytes.push_back(n);
  }
  fp.embd_bytes = m.tok_embd().n_bytes;
  fp.head_bytes = m.output_norm().n_bytes + m.output().n_bytes;  // output() is token_embd when tied
  fp.tied = m.tied_embeddings();
  fp.kv_bytes_per_layer = kv_bytes_per_layer;
  return fp;
}

result<std::vector<placement_group>> place_by_budget(const model_footprint& m, const std::vector<node_capacity>& nodes) {
  if (nodes.empty()) return make_error(errc::invalid_argument, "placement: no nodes");
  if (m.layer_bytes.empty()) return make_error(errc::invalid_argument, "placement: the model has no layers");
  if (m.layer_bytes.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return make_error(errc::invalid_argument, "placement: too many layers");
  const range_cost cost(m);
  const int32_t n = cost.n_layer();

  // --- nodes that can hold at least one layer (the cheapest one, with its KV reserve)
  uint64_t cheapest = std::numeric_limits<uint64_t>::max();
  for (int32_t l = 0; l < n; ++l) {
    const uint64_t c = m.range_bytes ? m.range_bytes(l, l + 1) : m.layer_bytes[static_cast<size_t>(l)] + m.kv_bytes_per_layer;
    if (c < cheapest) cheapest = c;
  }
  std::vector<const node_capacity*> used;
  std::vector<uint64_t> budgets;
  u128 offered = 0;
  for (const node_capacity& nc : nodes) {
    offered += nc.mem_budget;
    if (nc.mem_budget >= cheapest && nc.mem_budget > 0) {
      used.push_back(&nc);
      budgets.push_back(nc.mem_budget);
    }
  }
  auto below_capacity = [&]() {
    return make_error(errc::unavailable, "cluster below capacity: the model needs " + format_size(cost(0, n)) +
                                             (m.range_bytes ? " (at least, on one node)" : " (weights + KV reserve)") +
                                             " in contiguous layer groups, " +
                                             std::to_string(nodes.size()) + " node(s) offer " +
                                             format_size(offered > std::numeric_limits<uint64_t>::max()
                                                             ? std::numeric_limits<uint64_t>::max()
                                                             : static_cast<uint64_t>(offered)));
  };
  if (used.empty()) return below_capacity();

  // --- proportional split, then repair, then the furthest-reaching split
  const std::vector<int32_t> counts = proportional_counts(n, budgets);
  std::vector<int32_t> bnd(budgets.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) bnd[i + 1] = bnd[i] + counts[i];
  if (!all_fit(cost, bnd, budgets) && !repair(cost, bnd, budgets)) {
    std::fill(bnd.begin(), bnd.end(), 0);
    if (!greedy_fill(cost, bnd, budgets)) return below_capacity();
  }

  std::vector<placement_group> groups;
  for (size_t i = 0; i < used.size(); ++i)
    if (bnd[i] < bnd[i + 1]) groups.push_back({used[i]->name, bnd[i], bnd[i + 1]});
  return groups;
}

result<std::vector<placement_group>> parse_placement(const std::string& text, int32_t n_layer) {
  if (n_layer < 1) return make_error(errc::invalid_argument, "placement: the model has no layers");
  std::vector<placement_group> groups;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string item = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    const size_t eq = item.find('=');
    const size_t dash = eq == std::string::npos ? std::string::npos : item.find('-', eq);
    if (eq == std::string::npos || dash == std::string::npos)
      return make_error(errc::invalid_argument, "placement: '" + item + "' is not NAME=LO-HI");
    placement_group g;
    g.node = trim(item.substr(0, eq));
    if (g.node.empty()) return make_error(errc::invalid_argument, "placement: '" + item + "' has no node name");
    if (!parse_int(trim(item.substr(eq + 1, dash - eq - 1)), &g.layer_lo) || !parse_int(trim(item.substr(dash + 1)), &g.layer_hi))
      return make_error(errc::invalid_argument, "placement: '" + item + "' has a bad layer number");
    if (g.layer_lo >= g.layer_hi)
      return make_error(errc::invalid_argument, "placement: '" + item + "' is an empty group (hi is exclusive)");
    const int32_t expect = groups.empty() ? 0 : groups.back().layer_hi;
    if (g.layer_lo != expect)
      return make_error(errc::invalid_argument, "placement: '" + item + "' starts at layer " + std::to_string(g.layer_lo) +
                                                    (g.layer_lo > expect ? " leaving a gap" : " overlapping") + ": expected " +
                                                    std::to_string(expect));
    if (g.layer_hi > n_layer)
      return make_error(errc::invalid_argument, "placement: '" + item + "' goes past the model's " + std::to_string(n_layer) + " layers");
    groups.push_back(std::move(g));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (groups.back().layer_hi != n_layer)
    return make_error(errc::invalid_argument, "placement: layers " + std::to_string(groups.back().layer_hi) + "-" +
                                                  std::to_string(n_layer) + " are not placed");
  return groups;
}

std::string placement_to_string(const std::vector<placement_group>& groups) {
  std::string s;
  for (const placement_group& g : groups) {
    if (!s.empty()) s += ',';
    s += g.node + "=" + std::to_string(g.layer_lo) + "-" + std::to_string(g.layer_hi);
  }
  return s;
}

result<uint64_t> parse_size(const std::string& text) {
  auto bad = [&](const char* why) { return make_error(errc::invalid_argument, "size '" + text + "': " + why); };
  size_t i = 0;
  u128 whole = 0;
  const size_t digits_at = i;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > std::numeric_limits<uint64_t>::max()) return bad("too large");
  }
  if (i == digits_at) return bad("expected a number");
  u128 frac = 0, frac_scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t frac_at = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (i - frac_at < 18) {  // later digits are worth < 2^40 * 1e-18 bytes: dropped
        frac = frac * 10 + static_cast<unsigned>(text[i] - '0');
        frac_scale *= 10;
      }
    }
    if (i == frac_at) return bad("expected digits after '.'");
  }
  u128 mult = 1;
  if (i < text.size()) {
    switch (text[i]) {
      case 'K': case 'k': mult = u128(1) << 10; break;
      case 'M': case 'm': mult = u128(1) << 20; break;
      case 'G': case 'g': mult = u128(1) << 30; break;
      case 'T': case 't': mult = u128(1) << 40; break;
      case 'B': case 'b': break;
      default: return bad("unknown unit (K, M, G, T)");
    }
    if (text[i] != 'B' && text[i] != 'b') {
      ++i;
      const std::string rest = text.substr(i);
      if (!rest.empty() && rest != "iB" && rest != "B" && rest != "ib" && rest != "b") return bad("unknown unit suffix");
    } else if (i + 1 != text.size()) {
      return bad("unknown unit suffix");
    }
  }
  if (mult == 1 && frac != 0) return bad("a byte count must be whole");
  const u128 bytes = whole * mult + frac * mult / frac_scale;
  if (bytes > std::numeric_limits<uint64_t>::max()) return bad("too large");
  return static_cast<uint64_t>(bytes);
}

std::string format_size(uint64_t bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace lime
