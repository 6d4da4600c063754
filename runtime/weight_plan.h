// The residency rule of the weight store: for a layer range, a byte budget and a policy, which tensors (and which
// rows of the output head) stay resident and which are streamed per pass through a ring of buffers, and how many
// bytes every buffer takes. Pure planning: reads tensor shapes and file offsets, never weight bytes.
//
// The rule (policy lime; FlexInfer's balanced memory locking + flexible tensor preservation):
//  * Time per decoded token is bounded below by streamed bytes / storage bandwidth, and memory is
//    resident + ring_depth x slot, where a slot holds the largest streamed unit (a layer's streamed tensors or one
//    block of output-head rows). Every byte kept resident saves one byte read per token; every byte a unit streams
//    beyond the others' costs ring_depth bytes of slot. So the best plan streams the same amount from every unit.
//  * Balanced locking: one streamed fraction g is applied to every layer: a layer streams the cheapest subset of its
//    matrices whose bytes reach g x its matrix bytes; the output head streams ceil(g x n_vocab) rows (a suffix), cut
//    into blocks no larger than a slot. g is the smallest value (on a 1/2048 grid) whose plan fits the budget.
//  * Tensor preservation: among a layer's subsets with equal streamed bytes the one with the smallest buffers wins
//    (fewest aligned extents: file-adjacent tensors are read and kept as one piece), so the choice of *which*
//    tensors stay is driven by bytes and contiguity; the norms always stay (a few KiB each). Untied token
//    embeddings are the first thing given up: a pass reads only its tokens' rows (a few KiB per token, read on
//    demand), so keeping the whole table resident saves almost nothing; they stay only when everything fits.
//  * The budget left over after that (the subsets are coarse) is handed out in two steps: layers streaming the most
//    step down to their next smaller subset while the plan fits, then the head keeps more rows resident.
// Ring depth (lime, automatic): read-ahead needs two slots; the depth in 2..6 with the best estimated pass time
// (per unit max(read, compute) at depth 2, closer to max(total read, total compute) deeper) is taken, the
// shallowest on ties. One slot (no read-ahead) only when two do not fit the budget. A second slot costs one more
// unit's bytes per pass but hides the compute time behind the reads, which is more whenever a pass computes
// longer than it takes to read one unit (always, in practice: a unit is ~1/n_layer of the streamed bytes).
// Policy whole_layer: the first layers are fully resident, the remaining ones fully streamed (slot = a whole layer);
// leftover budget keeps head rows. Policy synchronous: the lime rule with a ring of one slot (no read-ahead).
// Policy resident: everything resident, or an error. Every policy goes all-resident when the budget allows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/forward.h"
#include "runtime/model.h"
#include "runtime/result.h"

namespace lime {

enum class weight_policy : uint8_t { lime, whole_layer, synchronous, resident };
const char* weight_policy_name(weight_policy p);  // "lime", "whole-layer", "sync", "resident"
result<weight_policy> weight_policy_from_name(const std::string& s);

enum class weight_role : uint8_t {
  attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down,  // layer_weights fields, in order
  output_norm, output_rows, tok_embd
};

struct plan_tensor {
  weight_role role = weight_role::attn_norm;
  weight_view shape;      // type, k, n_rows, n_bytes; data is unused (for output_rows: the block's rows only)
  uint64_t file_off = 0;  // absolute file offset of the first byte
  bool resident = false;
};

// One aligned read of the file into a unit's buffer.
struct plan_extent {
  uint64_t file_off = 0;  // multiple of align
  uint64_t len = 0;       // multiple of align
  uint64_t need = 0;      // bytes of [file_off, file_off + need) that must exist in the file
  uint64_t buf_off = 0;   // offset in the unit's buffer (multiple of align)
};

enum class unit_kind : uint8_t { layer, head, embd };

struct plan_unit {
  unit_kind kind = unit_kind::layer;
  int32_t layer = -1;     // layer units
  int64_t row0 = 0;       // head units: the output rows [row0, row0 + n_rows) they hold
  int64_t n_rows = 0;
  std::vector<plan_tensor> tensors;
  std::vector<plan_extent> resident_ext, stream_ext;
  uint64_t resident_bytes = 0, stream_bytes = 0;  // tensor bytes
  uint64_t resident_alloc = 0;  // resident buffer: extents rounded up to whole pages (0 when nothing is resident)
  uint64_t stream_alloc = 0;    // bytes one pass reads for this unit (aligned extents); fits in a slot
  bool streamed() const { return stream_alloc > 0; }
};

struct weight_plan_config {
  layer_range range;        // hi == 0: every layer
  uint64_t budget = 0;      // bytes for resident weights + ring + embedding row buffer + alignment slack
  weight_policy policy = weight_policy::lime;
  int32_t ring_depth = 0;   // slots; 0: chosen from the budget (see above; whole_layer: 2, synchronous: 1)
  uint32_t align = 4096;    // read alignment (O_DIRECT)
  double storage_gbps = 1.1;  // estimates for choosing the depth (1e9 bytes/s)
  double compute_gbps = 8.0;  // weight bytes the forward pass consumes per second
  bool preserve = true;       // false (benchmark ablation): no subset choice, a layer streams its last matrices
                              // first (ffn_down, ffn_up, ... in reverse role order) until it reaches its share
};

struct weight_plan {
  weight_policy policy = weight_policy::lime;
  layer_range range;
  int32_t ring_depth = 0;     // 0: nothing streamed through the ring
  uint64_t slot_bytes = 0;    // bytes per ring slot (whole pages)
  // Layer units for lo..hi-1 first; then, when hi == n_layer, head units: [head_begin] holds output_norm and the
  // resident rows [0, r) (possibly none), the next ones the streamed row blocks in order; then, when the untied
  // token embeddings are resident, one embd unit.
  std::vector<plan_unit> units;
  int32_t head_begin = -1, head_end = -1;  // [head_begin, head_end) in units; -1: no head
  int32_t embd_unit = -1;                  // resident token_embd unit, or -1
  bool embd_rows_streamed = false;  // lo == 0 and the rows a pass needs are read on demand (rows below the head's
                                    // resident rows come from the head's buffer when the embeddings are tied)
  bool embd_from_head = false;      // tied embeddings held together with the head
  uint64_t embd_file_off = 0;       // token_embd in the file
  weight_view embd_shape;           // token_embd type/k/n_rows/n_bytes
  int32_t embd_row_batch = 0;       // rows per on-demand read round
  uint64_t embd_row_span = 0;       // buffer bytes per row (aligned, with room for an unaligned start)
  uint64_t row_buffer_bytes = 0;    // embd_row_batch * embd_row_span, whole pages
  uint64_t resident_alloc = 0, ring_alloc = 0, total_alloc = 0;  // total = resident + ring + row buffer
  uint64_t weight_bytes = 0;        // the stage's weights (stage_weight_bytes)
  uint64_t resident_bytes = 0;      // tensor bytes resident
  uint64_t streamed_per_pass = 0;   // sum of stream_alloc: bytes read per pass (embedding rows not counted)
  double est_seconds = 0;           // estimated seconds per decode pass (depth choice)
  std::string describe() const;     // one line
};

// The plan for cfg. Errors: invalid_argument (bad range or depth), out_of_memory (the budget cannot hold the ring
// for the largest layer, or policy resident and the weights do not fit; the message says what is needed).
result<weight_plan> weight_plan_make(const model& m, const weight_plan_config& cfg);
// Smallest budget weight_plan_make accepts for cfg (cfg.budget ignored).
result<uint64_t> weight_plan_min_budget(const model& m, const weight_plan_config& cfg);
// Budget that keeps every weight of the range resident.
uint64_t weight_plan_resident_budget(const model& m, const weight_plan_config& cfg);
// Budget of the plan that streams every matrix and head row of the range through one slot (norms resident,
// embedding rows on demand): weight_plan_make accepts it for policy lime, and it is at least (in practice about)
// weight_plan_min_budget, without the search: one pass over the range's tensors, cheap enough for placement to ask
// for many ranges. 0 for a bad range.
uint64_t weight_plan_floor_budget(const model& m, const weight_plan_config& cfg);

uint64_t page_bytes();  // the system page size

}  // namespace lime
