// Helpers of the CUDA tests: device buffers (test code may allocate and synchronize; kernels never do), random
// weights of every computable type, and bitwise comparison that reports max-abs/relative differences on failure.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "kernels/cpu/quants.h"
#include "kernels/cuda/ops.h"
#include "kernels/tensor_type.h"

namespace lime::cuda::test {

// Owns one cudaMalloc allocation.
class dev_buffer {
 public:
  dev_buffer() = default;
  explicit dev_buffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
      const cudaError_t e = cudaMalloc(&p_, bytes);
      EXPECT_EQ(e, cudaSuccess) << "cudaMalloc(" << bytes << "): " << cudaGetErrorString(e);
      if (e != cudaSuccess) p_ = nullptr;
    }
  }
  dev_buffer(const dev_buffer&) = delete;
  dev_buffer& operator=(const dev_buffer&) = delete;
  dev_buffer(dev_buffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  ~dev_buffer() {
    if (p_) cudaFree(p_);
  }
  template <class T = void>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }
  void upload(const void* src, size_t n) {
    ASSERT_EQ(cudaMemcpy(p_, src, n, cudaMemcpyHostToDevice), cudaSuccess);
  }
  void download(void* dst, size_t n) const {
    ASSERT_EQ(cudaMemcpy(dst, p_, n, cudaMemcpyDeviceToHost), cudaSuccess);
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

template <class T>
dev_buffer to_device(const std::vector<T>& v) {
  dev_buffer b(v.size() * sizeof(T));
  if (!v.empty()) b.upload(v.data(), v.size() * sizeof(T));
  return b;
}

template <class T>
std::vector<T> from_device(const dev_buffer& b, size_t n) {
  std::vector<T> v(n);
  if (n > 0) b.download(v.data(), n * sizeof(T));
  return v;
}

inline ::testing::AssertionResult ok(const cuda_status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "status k=" << kstatus_name(s.k) << " cuda_error=" << s.cuda_error
                                       << " cublas_error=" << s.cublas_error << ": " << s.message;
}

// Launch + completion: a kernel's execution error shows up at the synchronize.
inline ::testing::AssertionResult ok_synced(const cuda_status& s) {
  if (!s.ok()) return ok(s);
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(e);
  return ::testing::AssertionSuccess();
}

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Bitwise equality of n floats, except that any NaN equals any NaN: the payload of a NaN an operation produces is the
// hardware's (an x86 core gives the default 0xffc00000 or quiets an operand's payload; an NVIDIA GPU always gives
// 0x7fffffff), so raw weight bits that decode to NaN or inf cannot give the same NaN bits on both. On mismatch: how
// many differ, the first one, and max abs / rel differences.
inline ::testing::AssertionResult same_bits(const float* got, const float* want, size_t n) {
  if (n == 0 || std::memcmp(got, want, n * sizeof(float)) == 0) return ::testing::AssertionSuccess();
  size_t n_diff = 0, first = n;
  double max_abs = 0, max_rel = 0;
  for (size_t i = 0; i < n; ++i) {
    if (bits_of(got[i]) == bits_of(want[i]) || (std::isnan(got[i]) && std::isnan(want[i]))) continue;
    if (first == n) first = i;
    ++n_diff;
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (d > max_abs) max_abs = d;
    const double rel = d / std::fmax(std::fabs(static_cast<double>(want[i])), 1e-30);
    if (rel > max_rel) max_rel = rel;
  }
  if (n_diff == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << n_diff << " of " << n << " values differ; first at " << first << ": got " << got[first] << " (0x" << std::hex
     << bits_of(got[first]) << ") want " << want[first] << " (0x" << bits_of(want[first]) << std::dec
     << "); max abs diff " << max_abs << ", max rel diff " << max_rel;
  return ::testing::AssertionFailure() << os.str();
}

inline std::vector<float> random_normal(size_t n, uint32_t seed, float std = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, std);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Every computable type (kernels/tensor_type.h).
inline std::vector<tensor_type> computable_types() {
  return {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q4_0,
          tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1, tensor_type::q8_0,
          tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k};
}

// A random finite fp16 bit pattern (normals, subnormals, zeros of both signs; never inf/NaN), |x| <= 2^max_exp.
inline uint16_t random_finite_half(std::mt19937& rng, int max_biased_exp = 18) {
  const uint16_t sign = static_cast<uint16_t>((rng() & 1u) << 15);
  const uint16_t exp = static_cast<uint16_t>(rng() % static_cast<uint32_t>(max_biased_exp + 1));
  return static_cast<uint16_t>(sign | (exp << 10) | (rng() & 0x3ffu));
}

// rows x k weights of type t. raw = false: random normals through cpu::quantize_row (realistic blocks). raw = true:
// random bytes, with every fp16 scale/offset field replaced by a random finite half, so each quant bit pattern
// and each 6-bit K-quant scale shows up (f32: normals; f16/bf16: random finite patterns).
inline std::vector<uint8_t> make_weights(tensor_type t, int64_t rows, int64_t k, uint32_t seed, bool raw) {
  const size_t row_bytes = tensor_row_bytes(t, k);
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(rows));
  std::mt19937 rng(seed);
  if (!raw || t == tensor_type::f32) {
    std::vector<float> v = random_normal(static_cast<size_t>(rows * k), seed + 1);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(cpu::quantize_row(t, v.data() + r * k, w.data() + r * row_bytes, k), kstatus::ok);
    }
    return w;
  }
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  auto put_half = [&](size_t off, uint16_t h) { std::memcpy(w.data() + off, &h, 2); };
  if (t == tensor_type::f16) {
    for (size_t i = 0; i < w.size(); i += 2) put_half(i, random_finite_half(rng, 30));
    return w;
  }
  if (t == tensor_type::bf16) {
    for (size_t i = 0; i < w.size(); i += 2) {
      uint16_t h;
      std::memcpy(&h, w.data() + i, 2);
      if ((h & 0x7f80u) == 0x7f80u) h = static_cast<uint16_t>(h & ~0x4000u);  // inf/NaN exponent -> finite
      put_half(i, h);
    }
    return w;
  }
  // fp16 fields per block: offsets within the block.
  std::vector<size_t> fields;
  switch (t) {
    case tensor_type::q4_0: case tensor_type::q5_0: case tensor_type::q8_0: fields = {0}; break;
    case tensor_type::q4_1: case tensor_type::q5_1: case tensor_type::q4_k: case tensor_type::q5_k:
      fields = {0, 2};
      break;
    case tensor_type::q6_k: fields = {208}; break;
    default: break;
  }
  const tensor_type_info& info = tensor_type_traits(t);
  const size_t n_blocks = w.size() / static_cast<size_t>(info.block_bytes);
  for (size_t b = 0; b < n_blocks; ++b) {
    for (size_t f : fields) put_half(b * static_cast<size_t>(info.block_bytes) + f, random_finite_half(rng));
  }
  return w;
}

}  // namespace lime::cuda::test
