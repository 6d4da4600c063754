// result<T>: a value or an error (code + human-readable context), the return type of everything in runtime/
// that can fail. No exceptions cross module boundaries.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace lime {

enum class errc : int {
  io_error = 1,       // open/read/mmap failed
  bad_format,         // the bytes are not what they claim (corrupt or truncated file, malformed message)
  unsupported,        // valid but not supported here (version, architecture, tensor type)
  missing,            // a required key or tensor is absent
  invalid_argument,   // a caller passed something unusable (bad flag, empty prompt, id out of range)
  out_of_memory,      // a budget or allocation limit would be exceeded
  context_full,       // the sequence reached the context length
  cancelled,
  internal,           // a bug: an invariant did not hold
  unavailable,        // the cluster cannot serve it now (below capacity, node lost, head gone)
};

const char* errc_name(errc c);

struct error {
  errc code = errc::internal;
  std::string message;  // one line, says what and where ("gguf: tensor 'x' data runs past end of file")
};

inline error make_error(errc c, std::string msg) { return error{c, std::move(msg)}; }

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : err_(std::move(e)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const error& err() const { return err_; }

 private:
  error err_;
  bool ok_ = true;
};

using status = result<void>;

}  // namespace lime

// Propagates an error from an expression yielding result<...>: LIME_TRY(auto x, f()); or LIME_TRY_VOID(g());
#define LIME_CONCAT_INNER(a, b) a##b
#define LIME_CONCAT(a, b) LIME_CONCAT_INNER(a, b)
#define LIME_TRY_VOID(expr)                    \
  do {                                         \
    auto lime_try_r_ = (expr);                 \
    if (!lime_try_r_.ok()) return lime_try_r_.err(); \
  } while (0)
#define LIME_TRY_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                   \
  if (!tmp.ok()) return tmp.err();     \
  decl = std::move(tmp).value()
#define LIME_TRY(decl, expr) LIME_TRY_IMPL(LIME_CONCAT(lime_try_, __LINE__), decl, expr)
