// What the x86 matvecs share (matvec_legacy_avx2.cpp / _avx512.cpp, matvec_kquant_avx512.cpp, and the staged
// K-quant matvec of matmul_kquants_avx2.cpp / _avx512.cpp): the row-stream order, argument checks and the walk over
// row groups, for one column or a few. Plain code, in an unnamed namespace: each ISA file keeps its own copy.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/cpu_tuning.h"
#include "kernels/cpu/matmul.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {

// A row kernel: R rows, row r at w + r * row_stride (row_bytes each), of a matvec over n_blocks blocks
// -> y[r * y_stride].
using matvec_rows_fn = void (*)(const uint8_t* w, size_t row_stride, size_t row_bytes, const float* x,
                                int64_t n_blocks, float* y, int64_t y_stride);

// The row order of every x86 matvec: rows [row_begin, row_end) as `group` row streams. With n rows and
// q = n / group, group_fn(row_begin + g, q) for g < q takes rows row_begin + g + j q (j < group): each of the
// group's rows walks its own stretch of q rows front to back, so each stream's addresses only ascend and the
// hardware's stream prefetchers follow them. Adjacent rows read side by side step back and forth inside the same
// pages, which those prefetchers do not follow: on a Xeon, Llama-3.2-1B Q4_K_M decode went from 16.0-16.5 to
// 20.8-21.4 tokens/s at 2 threads. The n - group q rows left over go one at a time to one_fn(row). Which rows
// share a call changes no bit.
template <class GroupFn, class OneFn>
void for_row_streams(int64_t row_begin, int64_t row_end, int group, GroupFn group_fn, OneFn one_fn) {
  const int64_t q = (row_end - row_begin) / group;
  for (int64_t g = 0; g < q; ++g) group_fn(row_begin + g, q);
  for (int64_t r = row_begin + group * q; r < row_end; ++r) one_fn(r);
}

// How far down its stream the legacy and q4_k row kernels request what they will read next: the successor row's, or a
// later row's when rows are short, so that every stream has at least k_prefetch_ahead bytes requested ahead of it.
// One row (432 bytes for K 768 in q4_0) kept too few bytes in flight on Zen 5 (in process, same bits, 9 rounds):
// q4_0 and q8_0 matvecs of 96-2048 rows x 768-2048 columns ran 3-12 % faster with 2 KiB, a 96-row q4_0 768-column
// call (a decode chunk at 2 threads) 12.3 -> 13.9 GB/s. With the requests spread among the fmas (the legacy and
// q4_k matvecs now), 1, 4 and 8 KiB measured no better than 2 (q4_0, q8_0, q4_k; 0.86-1.03x). A kernel that spends
// less time on each byte may ask for more (min_bytes): the q8_0 matvec, once its scales got cheaper, gained 3-10 %
// with 3 KiB (matvec_legacy_avx512.cpp).
constexpr size_t k_prefetch_ahead = 2048;
inline size_t prefetch_ahead(size_t row_bytes, size_t min_bytes = k_prefetch_ahead) {
  if (row_bytes == 0 || row_bytes >= min_bytes) return row_bytes;
  return (min_bytes + row_bytes - 1) / row_bytes * row_bytes;
}

// Requests the line holding first + r * row_stride into L1 for each of R rows: the matvecs' prefetch, one call a
// step among the fmas (spread out, not a burst per chunk: matvec_legacy_avx512.cpp, matvec_kquant_avx512.cpp,
// matvec_float.h). A request never faults, so addresses past the weights are harmless.
template <int R>
inline void request_rows(const uint8_t* first, size_t row_stride) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) __builtin_prefetch(first + r * row_stride, 0, 3);  // prefetcht0
}

// for_row_streams, or with order adjacent: group_fn(r, 1) for r = row_begin, row_begin + group, ... while a whole
// group fits, then one_fn(r) for the rest.
template <class GroupFn, class OneFn>
void for_rows_in_order(row_order order, int64_t row_begin, int64_t row_end, int group, GroupFn group_fn,
                       OneFn one_fn) {
  if (order == row_order::streams) return for_row_streams(row_begin, row_end, group, group_fn, one_fn);
  int64_t r = row_begin;
  for (; r + group <= row_end; r += group) group_fn(r, 1);
  for (; r < row_end; ++r) one_fn(r);
}

// The checks of a matvec's pointers, shape (K a whole number of block_elems blocks) and row range, as matmul_ref.
inline kstatus check_matvec_args(const matmul_args& a, int64_t block_elems) {
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.k % block_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  return kstatus::ok;
}

// a, a matvec (one column; unsupported_type for a batch) over blocks of block_elems elements and block_bytes
// bytes: rows [row_begin, row_end) by for_row_streams, `group` rows a call to group_rows, the rest to one_row.
inline kstatus run_matvec(const matmul_args& a, int64_t block_elems, size_t block_bytes, int group,
                          matvec_rows_fn group_rows, matvec_rows_fn one_row) {
  if (a.n_cols != 1) return kstatus::unsupported_type;
  if (const kstatus s = check_matvec_args(a, block_elems); s != kstatus::ok) return s;
  const int64_t nb = a.k / block_elems;
  const size_t rb = static_cast<size_t>(nb) * block_bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  for_row_streams(
      a.row_begin, a.row_end, group,
      [&](int64_t r, int64_t q) { group_rows(w + r * rb, static_cast<size_t>(q) * rb, rb, a.x, nb, a.y + r, q); },
      [&](int64_t r) { one_row(w + r * rb, rb, rb, a.x, nb, a.y + r, 1); });
  return kstatus::ok;
}

// A row kernel over a few activation columns: R rows as matvec_rows_fn times columns x + j * x_stride (j < C),
// -> y[j * y_col_stride + r * y_stride].
using cols_rows_fn = void (*)(const uint8_t* w, size_t row_stride, size_t row_bytes, const float* x, int64_t x_stride,
                              int64_t n_blocks, float* y, int64_t y_stride, int64_t y_col_stride);

// a, a batch of 2 to max_cols columns (unsupported_type otherwise) over blocks of block_elems elements and
// block_bytes bytes: rows by for_row_streams; the columns split evenly into groups of at most group_cols, every group
// run on a row group before the next row group (the later groups find its bytes in L1). group_fn(c) / one_fn(c):
// the kernel for c columns of `group` rows / of one row. Which columns share a pass changes no bit.
template <class GroupFn, class OneFn>
kstatus run_few_cols(const matmul_args& a, int64_t block_elems, size_t block_bytes, int group, int64_t max_cols,
                     int group_cols, GroupFn group_fn, OneFn one_fn) {
  constexpr int k_most_groups = 8;
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_cols < 2 || a.n_cols > max_cols || (a.n_cols + group_cols - 1) / group_cols > k_most_groups)
    return kstatus::unsupported_type;
  if (a.n_rows < 0 || a.k < 0 || a.k % block_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  const int n = static_cast<int>(a.n_cols);
  const int n_groups = (n + group_cols - 1) / group_cols;
  int first[k_most_groups], width[k_most_groups];  // each group's first column and column count
  for (int g = 0, c = 0; g < n_groups; ++g) {
    first[g] = c;
    width[g] = (n - c) / (n_groups - g);
    c += width[g];
  }
  const int64_t nb = a.k / block_elems;
  const size_t rb = static_cast<size_t>(nb) * block_bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  auto pass = [&](int64_t r, int64_t q, size_t rs, bool grouped) {
    for (int g = 0; g < n_groups; ++g) {
      const cols_rows_fn fn = grouped ? group_fn(width[g]) : one_fn(width[g]);
      fn(w + r * rb, rs, rb, a.x + first[g] * a.k, a.k, nb, a.y + first[g] * a.n_rows + r, q, a.n_rows);
    }
  };
  for_row_streams(
      a.row_begin, a.row_end, group, [&](int64_t r, int64_t q) { pass(r, q, static_cast<size_t>(q) * rb, true); },
      [&](int64_t r) { pass(r, 1, rb, false); });
  return kstatus::ok;
}

}  // namespace
}  // namespace lime::cpu
