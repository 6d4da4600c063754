// conversation_prompt: a request's turns rendered and tokenized exactly as chat_session renders a turn, so the
// distributed answer matches lime-chat's bit for bit. No generation here.
#include <string>
#include <vector>

#include "actors/scheduler_core.h"
#include "runtime/chat_template.h"
#include "runtime/utf8.h"

namespace lime {
namespace {

// chat_session's mode choice: the vocab's template when there is one, raw is off and lime can render it.
chat_family prompt_family(const tokenizer& tok, bool raw) {
  const std::string& tmpl = tok.get_vocab().chat_template;
  if (raw || tmpl.empty()) return chat_family::none;
  const chat_family f = chat_template_detect(tmpl);
  return f == chat_family::unknown ? chat_family::none : f;
}

}  // namespace

result<std::vector<int32_t>> conversation_prompt(const tokenizer& tok, const std::vector<msg::chat_turn>& turns,
                                                 bool raw, bool* remove_space_prefix) {
  const chat_family family = prompt_family(tok, raw);
  // chat_session validates the turn it is given: the newest user message. Earlier user turns were checked on
  // their own turn there; assistant turns are model output and may end in a partial character.
  const msg::chat_turn* last_user = nullptr;
  for (const msg::chat_turn& t : turns)
    if (t.role == "user") last_user = &t;
  if (last_user && !utf8_valid(last_user->content))
    return make_error(errc::invalid_argument, "the message is not valid UTF-8");

  if (family == chat_family::none) {
    // Plain completion: chat_session's text_ is every user message and answer appended; system turns exist only
    // in template mode.
    std::string text;
    for (const msg::chat_turn& t : turns)
      if (t.role != "system") text += t.content;
    // chat_session: detokenizer_stream(..., remove_space_prefix = text_.empty()) after the user's text is added.
    if (remove_space_prefix) *remove_space_prefix = text.empty();
    return tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
  }

  if (!last_user || last_user->content.empty()) return make_error(errc::invalid_argument, "empty message");
  const vocab& v = tok.get_vocab();
  std::vector<chat_message> messages;
  messages.reserve(turns.size());
  for (const msg::chat_turn& t : turns) messages.push_back({t.role, t.content});
  chat_render_options ro;
  ro.add_generation_prompt = true;
  ro.bos_token = v.bos >= 0 ? tok.token_to_piece(v.bos, true) : "";
  ro.eos_token = v.eos >= 0 ? tok.token_to_piece(v.eos, true) : "";
  ro.strip_leading_bos = v.add_bos;
  LIME_TRY(std::string rendered, chat_template_render(family, messages, ro));
  // Template mode never appends to chat_session's text_, so its detokenizer always drops the dummy-prefix space.
  if (remove_space_prefix) *remove_space_prefix = true;
  return tok.encode(rendered, /*add_special=*/true, /*parse_special=*/true);
}

}  // namespace lime
