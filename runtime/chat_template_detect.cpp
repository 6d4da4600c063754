// Chat template detection: maps a GGUF's tokenizer.chat_template (Jinja text) to a chat_family by the
// substrings that pin down how the template renders. Never evaluates Jinja; a template whose rendering
// lime's per-family renderer would not reproduce (tool-use prompts, other variants) is `unknown`.
#include <string>

#include "runtime/chat_template.h"

namespace lime {

const char* chat_family_name(chat_family f) {
  switch (f) {
    case chat_family::none: return "none";
    case chat_family::llama2: return "llama2";
    case chat_family::llama3: return "llama3";
    case chat_family::llama3_0: return "llama3_0";
    case chat_family::chatml: return "chatml";
    case chat_family::chatml_qwen: return "chatml_qwen";
    case chat_family::phi3: return "phi3";
    case chat_family::mistral: return "mistral";
    case chat_family::gemma: return "gemma";
    case chat_family::deepseek_r1: return "deepseek_r1";
    case chat_family::command_r: return "command_r";
    case chat_family::command_r7b: return "command_r7b";
    case chat_family::unknown: return "unknown";
  }
  return "unknown";
}

namespace {

struct jinja_text {
  const std::string& t;
  bool has(const char* s) const { return t.find(s) != std::string::npos; }
};

bool all_space(const std::string& s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f') return false;
  }
  return true;
}

// DeepSeek-R1 (and the Distill models): <｜User｜> / <｜Assistant｜>.
chat_family detect_deepseek(const jinja_text& j) {
  if (!j.has("<｜Assistant｜>")) return chat_family::unknown;
  // The generation prompt opens a think block in the current R1 templates; older R1 and V3 templates
  // end with a bare <｜Assistant｜>, which the deepseek_r1 renderer does not produce.
  if (!j.has("<｜Assistant｜><think>")) return chat_family::unknown;
  // llama.cpp's tool-call rewrite of the R1 template closes every user turn with an eos.
  if (j.has("<｜User｜>' + message['content'] + '<｜end▁of▁sentence｜>'")) return chat_family::unknown;
  return chat_family::deepseek_r1;
}

// Cohere: <|START_OF_TURN_TOKEN|>.
chat_family detect_cohere(const jinja_text& j) {
  if (!j.has("<|USER_TOKEN|>") || !j.has("<|CHATBOT_TOKEN|>")) return chat_family::unknown;
  // Command-R7B: a fixed system preamble and <|START_RESPONSE|>-wrapped replies; the renderer carries
  // that preamble verbatim, so every piece of it must be present.
  if (j.has("<|START_RESPONSE|>")) {
    if (j.has("# System Preamble") && j.has("You are in contextual safety mode.") &&
        j.has("Your information cutoff date is June 2024.") && j.has("# Default Preamble") &&
        j.has("# Developer Preamble") && j.has("- Your name is Command."))
      return chat_family::command_r7b;
    return chat_family::unknown;
  }
  // Command-R+ tool_use / rag templates always print a tool or document preamble: no plain-chat path.
  if (j.has("Preamble") || j.has("Available Tools") || j.has("<results>") || j.has("Action:"))
    return chat_family::unknown;
  return chat_family::command_r;
}

// Llama-3.x: <|start_header_id|>role<|end_header_id|>.
chat_family detect_llama3(const jinja_text& j) {
  if (!j.has("<|end_header_id|>") || !j.has("<|eot_id|>")) return chat_family::unknown;
  // Llama-3.1/3.2/3.3 print a "Cutting Knowledge Date ... Today Date ..." system block. Functionary
  // v3.1 prints "Cutting Knowledge Date" without "Today Date" (and its own layout): not llama3.
  if (j.has("Cutting Knowledge Date: December 2023") && j.has("Today Date: ")) return chat_family::llama3;
  // Llama-3 (3.0): no default system block and no tool machinery. Function-calling fine-tunes built on
  // the same header tokens (firefunction, functionary v3.2) print their own system prompts.
  if (!j.has("Cutting Knowledge") && !j.has("function") && !j.has("tool") && j.has("trim"))
    return chat_family::llama3_0;
  return chat_family::unknown;
}

// ChatML: <|im_start|>role\n ... <|im_end|>.
chat_family detect_chatml(const jinja_text& j) {
  if (!j.has("<|im_end|>")) return chat_family::unknown;
  if (j.has("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.") && !j.has("<think>"))
    return chat_family::chatml_qwen;
  // Plain chatml prints only the messages. A template that writes its own system text ("You are ..."),
  // think blocks, tool blocks or a different separator renders something else.
  if (j.has("You are") || j.has("<think>") || j.has("<tools>") || j.has("<|im_sep|>"))
    return chat_family::unknown;
  return chat_family::chatml;
}

// Phi-3.5: <|system|>\n / <|user|>\n / <|assistant|>\n, each turn closed by <|end|>\n. The original
// Phi-3-mini/medium templates drop the system message (no <|system|>): not this renderer.
chat_family detect_phi3(const jinja_text& j) {
  if (j.has("<|assistant|>") && j.has("<|end|>") && j.has("<|system|>")) return chat_family::phi3;
  return chat_family::unknown;
}

// [INST] templates: Llama-2 when they carry a <<SYS>> block, otherwise Mistral-Nemo's layout (no space
// after [INST], no [SYSTEM_PROMPT]); older Mistral layouts ("[INST] " with spaces) render differently.
chat_family detect_inst(const jinja_text& j) {
  if (!j.has("[/INST]")) return chat_family::unknown;
  if (j.has("<<SYS>>")) return chat_family::llama2;
  if (j.has("[INST] ") || j.has("[SYSTEM_PROMPT]")) return chat_family::unknown;
  return chat_family::mistral;
}

}  // namespace

chat_family chat_template_detect(const std::string& jinja) {
  if (all_space(jinja)) return chat_family::none;
  jinja_text j{jinja};
  // Most specific markers first: a template may mention another family's tokens in passing.
  if (j.has("<｜User｜>")) return detect_deepseek(j);
  if (j.has("<|START_OF_TURN_TOKEN|>")) return detect_cohere(j);
  if (j.has("<|start_header_id|>")) return detect_llama3(j);
  if (j.has("<|im_start|>")) return detect_chatml(j);
  if (j.has("<start_of_turn>")) return chat_family::gemma;
  if (j.has("<|user|>")) return detect_phi3(j);
  if (j.has("[INST]")) return detect_inst(j);
  return chat_family::unknown;
}

}  // namespace lime
