// Chat templates: detects the family from a GGUF's tokenizer.chat_template (Jinja text) and renders
// system/user/assistant turns exactly as that template would (no Jinja engine: one renderer per family).
#pragma once
#include <string>
#include <vector>

#include "runtime/result.h"

namespace lime {

enum class chat_family {
  none,          // no template: plain completion
  llama2,        // [INST] ... [/INST], <<SYS>> block
  llama3,        // Llama-3.1/3.2/3.3: <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>, with the
                 // default "Cutting Knowledge Date" system block
  llama3_0,      // Llama-3 (3.0): the same turns, no default system block
  chatml,        // <|im_start|>role\n ... <|im_end|>\n, plain (OpenHermes, Hermes, ...)
  chatml_qwen,   // Qwen2.5: chatml plus Qwen's default system prompt when there is no system message
  phi3,          // <|user|>\n ... <|end|>\n<|assistant|>\n
  mistral,       // Mistral-Nemo style [INST]...[/INST]
  gemma,         // <start_of_turn>user\n ... <end_of_turn>\n<start_of_turn>model\n
  deepseek_r1,   // <｜User｜> ... <｜Assistant｜>
  command_r,     // Command-R/R+ classic: <|START_OF_TURN_TOKEN|><|USER_TOKEN|> ...
  command_r7b,   // Command-R7B: fixed system preamble, <|START_RESPONSE|> ... <|END_RESPONSE|> replies
  unknown,       // a template lime cannot render: callers fall back to plain completion and say so
};
const char* chat_family_name(chat_family f);

struct chat_message {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

chat_family chat_template_detect(const std::string& jinja_text);

// Renders the conversation. add_generation_prompt: end with the assistant header so the model answers next.
// bos/eos: the vocab's BOS/EOS texts (some templates print them). The BOS the tokenizer adds itself is not
// part of the result: templates that print bos_token have it stripped from the front when the tokenizer
// adds one (strip_leading_bos).
struct chat_render_options {
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  bool strip_leading_bos = false;
};
result<std::string> chat_template_render(chat_family family, const std::vector<chat_message>& messages,
                                         const chat_render_options& opt);

}  // namespace lime
