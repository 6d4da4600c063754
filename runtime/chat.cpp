// Conversation state and turn handling for lime-chat (template and plain-completion modes).
#include "runtime/chat.h"

#include "runtime/utf8.h"

namespace lime {

chat_session::chat_session(session& s, const tokenizer& tok, chat_options opts)
    : session_(&s), tok_(&tok), opts_(std::move(opts)) {
  const std::string& tmpl = tok.get_vocab().chat_template;
  if (opts_.raw || tmpl.empty()) {
    family_ = chat_family::none;
    return;
  }
  family_ = chat_template_detect(tmpl);
  if (family_ == chat_family::unknown) {
    family_ = chat_family::none;
    fallback_reason_ = "the model's chat template is not one lime can render; using plain completion";
  }
  reset();
}

void chat_session::reset() {
  messages_.clear();
  text_.clear();
  if (template_mode() && !opts_.system_prompt.empty()) messages_.push_back({"system", opts_.system_prompt});
  session_->reset();
}

result<std::vector<int32_t>> chat_session::conversation_tokens() {
  const vocab& v = tok_->get_vocab();
  if (!template_mode()) return tok_->encode(text_, /*add_special=*/true, /*parse_special=*/true);
  chat_render_options ro;
  ro.add_generation_prompt = true;
  ro.bos_token = v.bos >= 0 ? tok_->token_to_piece(v.bos, true) : "";
  ro.eos_token = v.eos >= 0 ? tok_->token_to_piece(v.eos, true) : "";
  ro.strip_leading_bos = v.add_bos;
  LIME_TRY(std::string rendered, chat_template_render(family_, messages_, ro));
  return tok_->encode(rendered, /*add_special=*/true, /*parse_special=*/true);
}

result<generation_stats> chat_session::turn(const std::string& user_text, const std::function<bool(const std::string&)>& on_text,
                                            const std::atomic<bool>* cancel) {
  if (!utf8_valid(user_text)) return make_error(errc::invalid_argument, "the message is not valid UTF-8");
  if (template_mode() && user_text.empty()) return make_error(errc::invalid_argument, "empty message");
  const size_t n_messages = messages_.size();
  const size_t text_len = text_.size();
  if (template_mode()) messages_.push_back({"user", user_text});
  else text_ += user_text;

  auto prompt = conversation_tokens();
  if (!prompt.ok()) {
    messages_.resize(n_messages);
    text_.resize(text_len);
    return prompt.err();
  }
  // Plain mode keeps the prompt's own text; the answer is printed without the SPM dummy-prefix space only when
  // the conversation text is empty (the model's first token then carries it).
  detokenizer_stream detok(*tok_, /*special=*/false, /*remove_space_prefix=*/text_.empty());
  std::string answer;
  auto r = session_->generate(*prompt, opts_.sampling, opts_.n_predict, [&](int32_t id) {
    std::string piece = detok.push(id);
    if (piece.empty()) return true;
    answer += piece;
    return on_text ? on_text(piece) : true;
  }, cancel, opts_.ignore_eos);
  if (!r.ok()) {
    messages_.resize(n_messages);
    text_.resize(text_len);
    return r.err();
  }
  std::string rest = detok.flush();
  if (!rest.empty()) {
    answer += rest;
    if (on_text) on_text(rest);
  }
  if (template_mode()) messages_.push_back({"assistant", answer});
  else text_ += answer;
  return r;
}

}  // namespace lime
