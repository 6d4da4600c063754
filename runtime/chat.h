// A conversation over a session: renders turns with the model's chat template (or concatenates them as text
// in plain-completion mode), tokenizes, generates, and streams UTF-8-complete text. The KV of earlier turns is
// reused, so each turn only prefills what is new.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "runtime/chat_template.h"
#include "runtime/result.h"
#include "runtime/session.h"
#include "runtime/tokenizer.h"

namespace lime {

struct chat_options {
  bool raw = false;            // ignore the model's chat template: plain completion
  std::string system_prompt;   // template mode only
  sampling_params sampling;
  int32_t n_predict = -1;
  bool ignore_eos = false;     // never sample end-of-generation tokens
};

class chat_session {
 public:
  // Chooses template or plain mode from the vocab's chat_template and opts.raw.
  chat_session(session& s, const tokenizer& tok, chat_options opts);

  chat_family family() const { return family_; }
  bool template_mode() const { return family_ != chat_family::none; }
  // Why template mode is off although the model has a template ("" when not applicable).
  const std::string& fallback_reason() const { return fallback_reason_; }

  // One turn: the user's text in, the answer streamed through on_text (UTF-8-complete pieces; return false to
  // stop). In plain mode the user's text is appended to the conversation text and the model continues it.
  // Errors: invalid_argument (empty message in template mode, invalid UTF-8, prompt longer than the context).
  result<generation_stats> turn(const std::string& user_text, const std::function<bool(const std::string&)>& on_text,
                                const std::atomic<bool>* cancel);
  void reset();
  const std::vector<chat_message>& messages() const { return messages_; }

 private:
  result<std::vector<int32_t>> conversation_tokens();

  session* session_;
  const tokenizer* tok_;
  chat_options opts_;
  chat_family family_ = chat_family::none;
  std::string fallback_reason_;
  std::vector<chat_message> messages_;  // template mode
  std::string text_;                     // plain mode: the whole conversation text
};

}  // namespace lime
