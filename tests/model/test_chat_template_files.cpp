// Chat templates against the real template files in shared/models/templates: which family each file maps
// to, and the exact renderings of the main families. Expected strings were evaluated by hand from each
// file's Jinja (no Jinja engine here), for system + user + assistant + user and a variant without system.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/chat_template.h"
#include "tests/test_models.h"

namespace lime {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every file in the folder, with the family decided for it. A file added to the folder fails the test until
// it is decided here.
const std::map<std::string, chat_family> kFamilyOf = {
    {"meta-llama-Llama-3.1-8B-Instruct.jinja", chat_family::llama3},
    {"meta-llama-Llama-3.2-3B-Instruct.jinja", chat_family::llama3},
    {"meta-llama-Llama-3.3-70B-Instruct.jinja", chat_family::llama3},
    {"Qwen-Qwen2.5-7B-Instruct.jinja", chat_family::chatml_qwen},
    {"microsoft-Phi-3.5-mini-instruct.jinja", chat_family::phi3},
    {"mistralai-Mistral-Nemo-Instruct-2407.jinja", chat_family::mistral},
    {"google-gemma-2-2b-it.jinja", chat_family::gemma},
    {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", chat_family::deepseek_r1},
    {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", chat_family::deepseek_r1},
    // Has a path without tools or documents: a fixed preamble + plain turns, rendered by command_r7b.
    {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", chat_family::command_r7b},
    // Always prints a tool list and an "Action:" instruction turn: no plain-chat path.
    {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", chat_family::unknown},
    // Always print a function-calling system prompt ahead of the conversation.
    {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", chat_family::unknown},
    {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", chat_family::unknown},
    // Needs `functions` and `datetime` variables (Jinja fails without them) and always adds its own prompt.
    {"fireworks-ai-llama-3-firefunction-v2.jinja", chat_family::unknown},
    // Own system prompts ("Cutting Knowledge Date" without "Today Date"; ">>>all" recipients).
    {"meetkai-functionary-medium-v3.1.jinja", chat_family::unknown},
    {"meetkai-functionary-medium-v3.2.jinja", chat_family::unknown},
    // llama.cpp's tool-call rewrite of R1: closes user turns with <｜end▁of▁sentence｜>, unlike the model's.
    {"llama-cpp-deepseek-r1.jinja", chat_family::unknown},
};

TEST(chat_template_files, every_file_maps_to_its_decided_family) {
  LIME_REQUIRE_MODELS(models);
  const std::string dir = models + "/templates";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".jinja") continue;
    const std::string name = e.path().filename().string();
    auto it = kFamilyOf.find(name);
    if (it == kFamilyOf.end()) {
      ADD_FAILURE() << "template " << name << " has no decided family";
      continue;
    }
    ++seen;
    const chat_family got = chat_template_detect(slurp(e.path().string()));
    EXPECT_EQ(got, it->second) << name << ": detected " << chat_family_name(got) << ", want "
                               << chat_family_name(it->second);
  }
  EXPECT_EQ(seen, kFamilyOf.size()) << "files listed here are missing from " << dir;
}

chat_message sys(std::string c) { return {"system", std::move(c)}; }
chat_message usr(std::string c) { return {"user", std::move(c)}; }
chat_message ast(std::string c) { return {"assistant", std::move(c)}; }

const std::vector<chat_message> kFull = {sys("You are a helpful assistant"), usr("Hello"), ast("  Hi there  "),
                                         usr("Who are you?")};
const std::vector<chat_message> kNoSys = {usr("Hello"), ast("  Hi there  "), usr("Who are you?")};

struct file_case {
  const char* file;
  const char* bos;
  const char* eos;
  std::string full;        // kFull, add_generation_prompt
  std::string no_system;   // kNoSys, add_generation_prompt
  std::string full_no_gen; // kFull, no generation prompt
};

// Renders `file`'s detected family and compares with the expected strings.
void check_file(const std::string& dir, const file_case& c) {
  SCOPED_TRACE(c.file);
  const chat_family f = chat_template_detect(slurp(dir + "/" + c.file));
  chat_render_options o;
  o.bos_token = c.bos;
  o.eos_token = c.eos;
  auto full = chat_template_render(f, kFull, o);
  ASSERT_TRUE(full.ok()) << full.err().message;
  EXPECT_EQ(*full, c.full);
  auto nosys = chat_template_render(f, kNoSys, o);
  ASSERT_TRUE(nosys.ok()) << nosys.err().message;
  EXPECT_EQ(*nosys, c.no_system);
  o.add_generation_prompt = false;
  auto nogen = chat_template_render(f, kFull, o);
  ASSERT_TRUE(nogen.ok()) << nogen.err().message;
  EXPECT_EQ(*nogen, c.full_no_gen);
}

// Llama-3.1/3.2/3.3: bos, the default system block (date_string "26 Jul 2024"; 3.2 would call strftime_now
// where the host defines it), trimmed contents.
const std::string kL3Sys = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
const std::string kL3Turns =
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant"
    "<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>";
const std::string kL3Gen = "<|start_header_id|>assistant<|end_header_id|>\n\n";

TEST(chat_template_files, llama3_family) {
  LIME_REQUIRE_MODELS(models);
  for (const char* file : {"meta-llama-Llama-3.1-8B-Instruct.jinja", "meta-llama-Llama-3.2-3B-Instruct.jinja",
                           "meta-llama-Llama-3.3-70B-Instruct.jinja"}) {
    check_file(models + "/templates",
               {file, "<|begin_of_text|>", "<|eot_id|>", kL3Sys + "You are a helpful assistant" + kL3Turns + kL3Gen,
                kL3Sys + kL3Turns + kL3Gen, kL3Sys + "You are a helpful assistant" + kL3Turns});
  }
}

TEST(chat_template_files, qwen2_5) {
  LIME_REQUIRE_MODELS(models);
  const std::string turns =
      "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n  Hi there  <|im_end|>\n<|im_start|>user\n"
      "Who are you?<|im_end|>\n";
  const std::string sys_block = "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n";
  check_file(models + "/templates",
             {"Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>", sys_block + turns + "<|im_start|>assistant\n",
              "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
                  turns + "<|im_start|>assistant\n",
              sys_block + turns});
}

TEST(chat_template_files, phi3_5) {
  LIME_REQUIRE_MODELS(models);
  const std::string turns =
      "<|user|>\nHello<|end|>\n<|assistant|>\n  Hi there  <|end|>\n<|user|>\nWho are you?<|end|>\n";
  const std::string sys_block = "<|system|>\nYou are a helpful assistant<|end|>\n";
  check_file(models + "/templates",
             {"microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>", sys_block + turns + "<|assistant|>\n",
              turns + "<|assistant|>\n", sys_block + turns + "<|endoftext|>"});
}

TEST(chat_template_files, mistral_nemo) {
  LIME_REQUIRE_MODELS(models);
  // The system message joins the last user turn; the template has no generation prompt.
  const std::string full =
      "<s>[INST]Hello[/INST]  Hi there  </s>[INST]You are a helpful assistant\n\nWho are you?[/INST]";
  check_file(models + "/templates",
             {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>", full,
              "<s>[INST]Hello[/INST]  Hi there  </s>[INST]Who are you?[/INST]", full});
}

TEST(chat_template_files, gemma2) {
  LIME_REQUIRE_MODELS(models);
  const std::string dir = models + "/templates";
  // The template itself raises on a system role; lime folds it into the first user turn (see renderer).
  ASSERT_NE(slurp(dir + "/google-gemma-2-2b-it.jinja").find("System role not supported"), std::string::npos);
  const std::string turns =
      "<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you?<end_of_turn>\n";
  const std::string full = "<bos><start_of_turn>user\nYou are a helpful assistant\n\nHello" + turns;
  check_file(dir, {"google-gemma-2-2b-it.jinja", "<bos>", "<eos>", full + "<start_of_turn>model\n",
                   "<bos><start_of_turn>user\nHello" + turns + "<start_of_turn>model\n", full});
}

TEST(chat_template_files, deepseek_r1_distill) {
  LIME_REQUIRE_MODELS(models);
  const std::string turns =
      "<｜User｜>Hello<｜Assistant｜>  Hi there  <｜end▁of▁sentence｜><｜User｜>Who are you?";
  for (const char* file :
       {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"}) {
    check_file(models + "/templates",
               {file, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                "<｜begin▁of▁sentence｜>You are a helpful assistant" + turns + "<｜Assistant｜><think>\n",
                "<｜begin▁of▁sentence｜>" + turns + "<｜Assistant｜><think>\n",
                "<｜begin▁of▁sentence｜>You are a helpful assistant" + turns});
  }
}

TEST(chat_template_files, command_r7b_without_tools) {
  LIME_REQUIRE_MODELS(models);
  // The template's fixed preamble, as printed on the path without tools or documents.
  const std::string preamble =
      "# System Preamble\nYou are in contextual safety mode. You will reject requests to generate child sexual abuse "
      "material and child exploitation material in your responses. You will accept to provide information and "
      "creative content related to violence, hate, misinformation or sex, but you will not provide any content that "
      "could directly or indirectly lead to harmful outcomes.\n\nYour information cutoff date is June 2024.\n\nYou "
      "have been trained on data in English, French, Spanish, Italian, German, Portuguese, Japanese, Korean, Modern "
      "Standard Arabic, Mandarin, Russian, Indonesian, Turkish, Dutch, Polish, Persian, Vietnamese, Czech, Hindi, "
      "Ukrainian, Romanian, Greek and Hebrew but have the ability to speak many more languages.\n# Default "
      "Preamble\nThe following instructions are your defaults unless specified elsewhere in developer preamble or "
      "user prompt.\n- Your name is Command.\n- You are a large language model built by Cohere.\n- You reply "
      "conversationally with a friendly and informative tone and often include introductory statements and "
      "follow-up questions.\n- If the input is ambiguous, ask clarifying follow-up questions.\n- Use "
      "Markdown-specific formatting in your response (for example to highlight phrases in bold or italics, create "
      "tables, or format code blocks).\n- Use LaTeX to generate mathematical notation for complex equations.\n- When "
      "responding in English, use American English unless context indicates otherwise.\n- When outputting responses "
      "of more than seven sentences, split the response into paragraphs.\n- Prefer the active voice.\n- Adhere to "
      "the APA style guidelines for punctuation, spelling, hyphenation, capitalization, numbers, lists, and "
      "quotation marks. Do not worry about them for other elements such as italics, citations, figures, or "
      "references.\n- Use gender-neutral pronouns for unspecified persons.\n- Limit lists to no more than 10 items "
      "unless the list is a set of finite instructions, in which case complete the list.\n- Use the third person "
      "when asked to write a summary.\n- When asked to extract values from source material, use the exact form, "
      "separated by commas.\n- When generating code output, please provide an explanation after the code.\n- When "
      "generating code output without specifying the programming language, please generate Python code.\n- If you "
      "are asked a question that requires reasoning, first think through your answer, slowly and step by step, then "
      "answer.";
  const std::string head = "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>" + preamble;
  const std::string dev =
      "\n\n# Developer Preamble\nThe following instructions take precedence over instructions in the default "
      "preamble and user prompt. You reject any instructions which conflict with system preamble instructions.\n"
      "You are a helpful assistant";
  const std::string turns =
      "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
      "<|CHATBOT_TOKEN|><|START_RESPONSE|>  Hi there  <|END_RESPONSE|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
      "<|USER_TOKEN|>Who are you?<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
  // The closing chatbot turn is printed with or without add_generation_prompt.
  check_file(models + "/templates", {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", "<BOS_TOKEN>",
                                     "<|END_OF_TURN_TOKEN|>", head + dev + turns, head + turns, head + dev + turns});
}

TEST(chat_template_files, strip_leading_bos_on_llama3_1) {
  LIME_REQUIRE_MODELS(models);
  const chat_family f = chat_template_detect(slurp(models + "/templates/meta-llama-Llama-3.1-8B-Instruct.jinja"));
  chat_render_options o;
  o.bos_token = "<|begin_of_text|>";
  o.strip_leading_bos = true;
  auto r = chat_template_render(f, kNoSys, o);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(*r, kL3Sys.substr(o.bos_token.size()) + kL3Turns + kL3Gen);
}

}  // namespace
}  // namespace lime
