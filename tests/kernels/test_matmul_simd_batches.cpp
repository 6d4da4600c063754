// SIMD matmul variants against matmul_ref on the batch paths: rows independent of batch size and row split, the
// small-batch staging, the few-column kernels and the lane path, in every variant and emulated tile shape.
#include <gtest/gtest.h>

#include <cstring>
#include <utility>
#include <vector>

#include "tests/kernels/matmul_simd_common.h"

namespace lime::cpu {
namespace {

class matmul_simd_batches : public matmul_simd {};

TEST_P(matmul_simd_batches, rows_are_batch_invariant) {
  for (tensor_type t : k_types) {
    // 64 columns: the lane path on AVX2 (K a multiple of 16: 192, 208), the part tiles at K = 200
    for (int64_t k : is_float(t) ? std::vector<int64_t>{200, 208} : std::vector<int64_t>{192}) {
      const int64_t n_rows = 30, n_cols = 64;
      const std::vector<uint8_t> w = random_weights(t, n_rows, k, 21);
      const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 22);
      {
        const variant& v = v_;
        std::vector<float> full(static_cast<size_t>(n_cols * n_rows));
        ASSERT_EQ(v.fn(make_args(t, w.data(), n_rows, k, x.data(), n_cols, full.data(), 0, n_rows)), kstatus::ok);
        for (int64_t batch : {1, 7, 64}) {
          std::vector<float> part(static_cast<size_t>(n_cols * n_rows));
          for (int64_t c0 = 0; c0 < n_cols; c0 += batch) {
            const int64_t nc = n_cols - c0 < batch ? n_cols - c0 : batch;
            // Rows split too, as threads would: two halves.
            for (auto rr : {std::pair<int64_t, int64_t>{0, 13}, {13, n_rows}}) {
              std::vector<float> y(static_cast<size_t>(nc * n_rows));
              ASSERT_EQ(v.fn(make_args(t, w.data(), n_rows, k, &x[c0 * k], nc, y.data(), rr.first, rr.second)),
                        kstatus::ok);
              for (int64_t c = 0; c < nc; ++c) {
                for (int64_t r = rr.first; r < rr.second; ++r) part[(c0 + c) * n_rows + r] = y[c * n_rows + r];
              }
            }
          }
          EXPECT_EQ(std::memcmp(full.data(), part.data(), full.size() * sizeof(float)), 0)
              << v.name << " " << tensor_type_name(t) << " k=" << k << " batch=" << batch;
        }
      }
    }
  }
}

// Small quantized batches on AVX-512 and its emulated shape (kernels/cpu/x86/matmul_small.h: from
// small::min_cols_for(type) columns, 12 to 24 here, up to the lane path; the tiles below that): full 16-row
// groups, then a group of fewer 4-row tiles and single rows, row ranges that cut them, K in one staged chunk, in
// eight (2048) and in a full one plus a short one (288), column groups of 6 and partial ones.
TEST_P(matmul_simd_batches, small_batch_groups_and_chunks_equal_reference) {
  const int64_t n_rows = 41;  // 2 groups of 16 rows, 2 tiles of 4, 1 row
  for (tensor_type t : k_types) {
    if (is_float(t)) continue;
    for (int64_t k : {32, 288, 2048}) {
      const std::vector<uint8_t> w = random_weights(t, n_rows, k, 51 + static_cast<uint32_t>(k));
      const std::vector<float> x = random_floats(static_cast<size_t>(47 * k), 52 + static_cast<uint32_t>(k));
      for (int64_t n_cols : {12, 13, 31, 47}) {
        if (k == 2048 && n_cols == 47) continue;  // the lane path's from 32 columns at this K
        for (auto rr : {std::pair<int64_t, int64_t>{0, n_rows}, {3, 40}, {17, 21}}) {
          expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, rr.first, rr.second);
        }
      }
    }
  }
}

// Few-column q4_0 batches on AVX-512 (kernels/cpu/x86/matvec_legacy_avx512.cpp: 2 to 16 columns): every column
// count (one to four column groups of up to 5 columns), groups of 4 row streams and single rows, row ranges that
// cut them, K of one block, of a 16-block scale chunk plus one block (544) and of 64 blocks; 17 columns go on to
// the small-batch path. q8_0 keeps the tiles at these widths. Other variants take their tiles here.
// (q4_k: kquant_simd.few_column_batches_equal_reference.)
TEST_P(matmul_simd_batches, few_column_batches_equal_reference) {
  const int64_t n_rows = 23;  // 5 groups of 4 row streams, 3 single rows
  for (tensor_type t : {tensor_type::q4_0, tensor_type::q8_0}) {
    for (int64_t k : {32, 544, 2048}) {
      const std::vector<uint8_t> w = random_weights(t, n_rows, k, 61 + static_cast<uint32_t>(k));
      const std::vector<float> x = random_floats(static_cast<size_t>(17 * k), 62 + static_cast<uint32_t>(k));
      for (int64_t n_cols = 2; n_cols <= 17; ++n_cols) {
        for (auto rr : {std::pair<int64_t, int64_t>{0, n_rows}, {1, 22}, {9, 10}}) {
          expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, rr.first, rr.second);
        }
      }
    }
  }
}

// The lane path of batches (AVX2 and AVX-512, kernels/cpu/x86/matmul_lanes.h): partial 6- and 12-row tiles and
// 16-column panels, row blocks (48 rows; 192 for large activations) and row ranges that cut them, two column blocks
// (128 + 8 columns at k = 4096); 47 columns at K = 256 stay on the tiles.
TEST_P(matmul_simd_batches, lane_path_blocks_and_tails_equal_reference) {
  const int64_t n_rows = 100;
  for (tensor_type t : k_types) {
    std::vector<int64_t> ks = {32, 256};
    if (is_float(t)) ks.insert(ks.end(), {16, 48});
    for (int64_t k : ks) {
      const std::vector<uint8_t> w = random_weights(t, n_rows, k, 31 + static_cast<uint32_t>(k));
      const std::vector<float> x = random_floats(static_cast<size_t>(80 * k), 32 + static_cast<uint32_t>(k));
      for (int64_t n_cols : {47, 48, 49, 80}) {
        for (auto rr : {std::pair<int64_t, int64_t>{0, n_rows}, {5, 97}, {47, 53}}) {
          expect_equal_to_ref(v_, t, w.data(), n_rows, k, x.data(), n_cols, rr.first, rr.second);
        }
      }
    }
  }
  for (tensor_type t : {tensor_type::f32, tensor_type::q4_0}) {
    const int64_t rows = 13, k = 4096, n_cols = 136;
    const std::vector<uint8_t> w = random_weights(t, rows, k, 41);
    const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 42);
    expect_equal_to_ref(v_, t, w.data(), rows, k, x.data(), n_cols, 0, rows);
  }
  // Activations over 1 MiB per column block (272 columns at K = 1024) take row blocks of up to 192 rows: 200 rows
  // are a full block and a cut one, the range [5, 197) cuts both.
  for (tensor_type t : {tensor_type::f32, tensor_type::q4_0}) {
    const int64_t rows = 200, k = 1024, n_cols = 272;
    const std::vector<uint8_t> w = random_weights(t, rows, k, 43);
    const std::vector<float> x = random_floats(static_cast<size_t>(n_cols * k), 44);
    for (auto rr : {std::pair<int64_t, int64_t>{0, rows}, {5, 197}}) {
      expect_equal_to_ref(v_, t, w.data(), rows, k, x.data(), n_cols, rr.first, rr.second);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(variants, matmul_simd_batches,
                         ::testing::ValuesIn(k_variant_names), variant_test_name);

}  // namespace
}  // namespace lime::cpu
