// stories260K loaded for tests: the model and its tokenizer, with an optional edit of the vocab (a chat template or
// BOS override) before the tokenizer is built. Failures are recorded as test failures.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"

namespace lime::test {

struct stories_model {
  std::unique_ptr<model> m;
  std::unique_ptr<tokenizer> tok;
  bool load(const std::string& dir, const std::function<void(vocab&)>& edit = {}) {
    auto mm = model::load(dir + "/stories260K.gguf");
    if (!mm.ok()) { ADD_FAILURE() << mm.err().message; return false; }
    m = std::make_unique<model>(std::move(*mm));
    auto v = vocab_load(m->file());
    if (!v.ok()) { ADD_FAILURE() << v.err().message; return false; }
    if (edit) edit(*v);
    auto t = tokenizer::create(std::move(*v));
    if (!t.ok()) { ADD_FAILURE() << t.err().message; return false; }
    tok = std::make_unique<tokenizer>(std::move(*t));
    return true;
  }
};

}  // namespace lime::test
