// Where tests find model files: $LIME_TEST_MODELS if set (then it must exist), else <repo>/../shared/models
// (skipped with a message when absent).
#pragma once
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

namespace lime::test {

inline bool dir_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Returns the models folder, or "" with *why set when tests must skip; *fail set when the
// user asked for a folder (LIME_TEST_MODELS) that does not exist.
inline std::string models_dir(std::string* why, bool* fail) {
  *fail = false;
  if (const char* env = std::getenv("LIME_TEST_MODELS"); env && *env) {
    if (dir_exists(env)) return env;
    *fail = true;
    *why = std::string("LIME_TEST_MODELS=") + env + " is not a folder";
    return "";
  }
  std::string def = std::string(LIME_SOURCE_DIR) + "/../shared/models";
  if (dir_exists(def)) return def;
  *why = "no test models: set LIME_TEST_MODELS to a folder with stories260K.gguf (default " + def + " is absent)";
  return "";
}

}  // namespace lime::test

// Declares `std::string models` in the calling test, or skips/fails it.
#define LIME_REQUIRE_MODELS(models)                                   \
  std::string models;                                                 \
  do {                                                                \
    std::string why_;                                                 \
    bool fail_ = false;                                               \
    models = ::lime::test::models_dir(&why_, &fail_);                 \
    if (fail_) FAIL() << why_;                                        \
    if (models.empty()) GTEST_SKIP() << why_;                         \
  } while (0)
