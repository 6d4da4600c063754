// Chat templates without model files: detection of well-known template texts, exact renderings, errors.
// Expected strings are what the Jinja templates print (llama.cpp's tests/test-chat-template.cpp lists many
// of them for its 6-message conversation; the rest were evaluated by hand from the template text).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "runtime/chat_template.h"

namespace lime {
namespace {

chat_message sys(std::string c) { return {"system", std::move(c)}; }
chat_message usr(std::string c) { return {"user", std::move(c)}; }
chat_message ast(std::string c) { return {"assistant", std::move(c)}; }

// The conversation llama.cpp's test-chat-template.cpp renders with every template.
const std::vector<chat_message> kConv = {
    sys("You are a helpful assistant"), usr("Hello"),   ast("Hi there"),
    usr("Who are you"),                 ast("   I am an assistant   "), usr("Another question"),
};

chat_render_options opts(std::string bos, std::string eos, bool agp = true) {
  chat_render_options o;
  o.bos_token = std::move(bos);
  o.eos_token = std::move(eos);
  o.add_generation_prompt = agp;
  return o;
}

std::string render_ok(chat_family f, const std::vector<chat_message>& m, const chat_render_options& o) {
  auto r = chat_template_render(f, m, o);
  EXPECT_TRUE(r.ok()) << chat_family_name(f) << ": " << (r.ok() ? "" : r.err().message);
  return r.ok() ? r.value() : std::string("<error>");
}

void expect_raise(chat_family f, const std::vector<chat_message>& m, const std::string& msg) {
  auto r = chat_template_render(f, m, opts("<s>", "</s>"));
  ASSERT_FALSE(r.ok()) << chat_family_name(f);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_NE(r.err().message.find(msg), std::string::npos) << r.err().message;
}

// ---- detection

TEST(chat_template_detect, empty_is_none) {
  EXPECT_EQ(chat_template_detect(""), chat_family::none);
  EXPECT_EQ(chat_template_detect(" \n\t"), chat_family::none);
}

TEST(chat_template_detect, known_template_texts) {
  struct c { const char* name; std::string text; chat_family want; };
  const std::vector<c> cases = {
      {"OpenHermes-2.5 (chatml)",
       R"J({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})J",
       chat_family::chatml},
      {"Llama-2-chat",
       R"J({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})J",
       chat_family::llama2},
      {"Llama-3 (3.0)",
       "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
       "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
       "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
       "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
       chat_family::llama3_0},
      {"c4ai-command-r-plus (default)",
       R"J({{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif false == true %}{% set loop_messages = messages %}{% set system_message = 'You are Command-R, a brilliant, sophisticated, AI-assistant trained to assist human users by providing thorough responses. You are trained by Cohere.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% if system_message != false %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %})J",
       chat_family::command_r},
      {"gemma-7b-it",
       R"J({% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})J",
       chat_family::gemma},
      // Mistral v0.2 puts spaces around [INST]: not the Nemo layout.
      {"Mistral-7B-Instruct-v0.2",
       R"J({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})J",
       chat_family::unknown},
      {"Mistral-Large-2411 (v7)",
       R"J({{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}{% endfor %})J",
       chat_family::unknown},
      // Phi-3-mini drops system messages: no <|system|> in its text.
      {"Phi-3-mini",
       R"J({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %})J",
       chat_family::unknown},
      {"phi-4",
       R"J({% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|><|im_start|>assistant<|im_sep|>'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|im_end|>'}}{% endif %}{% endfor %})J",
       chat_family::unknown},
      {"GLMEdge",
       R"J({% for item in messages %}{% if item['role'] == 'system' %}<|system|>\n{{ item['content'] }}{% elif item['role'] == 'user' %}<|user|>\n{{ item['content'] }}{% elif item['role'] == 'assistant' %}<|assistant|>\n{{ item['content'] }}{% endif %}{% endfor %}<|assistant|>)J",
       chat_family::unknown},
      {"DeepSeek-V2",
       R"J({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %})J",
       chat_family::unknown},
      // A DeepSeek template whose generation prompt does not open <think> (V3 / early R1).
      {"DeepSeek without <think>",
       R"J({{bos_token}}{% for message in messages %}{% if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{'<｜Assistant｜>'}}{% endif %})J",
       chat_family::unknown},
      {"not a template", "INVALID TEMPLATE", chat_family::unknown},
  };
  for (const auto& tc : cases) {
    EXPECT_EQ(chat_template_detect(tc.text), tc.want)
        << tc.name << ": got " << chat_family_name(chat_template_detect(tc.text));
  }
}

TEST(chat_template_detect, family_names_are_distinct) {
  std::set<std::string> names;
  const chat_family all[] = {chat_family::none,        chat_family::llama2,    chat_family::llama3,
                             chat_family::llama3_0,    chat_family::chatml,    chat_family::chatml_qwen,
                             chat_family::phi3,        chat_family::mistral,   chat_family::gemma,
                             chat_family::deepseek_r1, chat_family::command_r, chat_family::command_r7b,
                             chat_family::unknown};
  for (chat_family f : all) names.insert(chat_family_name(f));
  EXPECT_EQ(names.size(), sizeof(all) / sizeof(all[0]));
  EXPECT_STREQ(chat_family_name(chat_family::llama3), "llama3");
}

// ---- renderings of llama.cpp's conversation (expected strings from its test-chat-template.cpp)

TEST(chat_template_render, llama_cpp_reference_outputs) {
  EXPECT_EQ(render_ok(chat_family::chatml, kConv, opts("", "")),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_ok(chat_family::command_r, kConv, opts("", "")),
            "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|>"
            "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
            "Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you<|END_OF_TURN_TOKEN|>"
            "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
            "<|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
  EXPECT_EQ(render_ok(chat_family::llama3_0, kConv, opts("", "")),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>"
            "user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there"
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother "
            "question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // gemma: llama.cpp's own gemma formatter also folds the system message into the first user turn.
  EXPECT_EQ(render_ok(chat_family::gemma, kConv, opts("", "")),
            "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there"
            "<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant"
            "<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(render_ok(chat_family::mistral, kConv, opts("", "</s>")),
            "[INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an assistant   </s>"
            "[INST]You are a helpful assistant\n\nAnother question[/INST]");
  EXPECT_EQ(render_ok(chat_family::llama2, kConv, opts("", "</s>")),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>[INST] Who are you "
            "[/INST] I am an assistant </s>[INST] Another question [/INST]");
}

// ---- per-family details, each evaluated from the family's template text

TEST(chat_template_render, llama2_bos_per_turn_and_system_rules) {
  EXPECT_EQ(render_ok(chat_family::llama2, kConv, opts("<s>", "</s>")),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who "
            "are you [/INST] I am an assistant </s><s>[INST] Another question [/INST]");
  EXPECT_EQ(render_ok(chat_family::llama2, {usr("  hi  "), ast(" yo "), usr("q")}, opts("<s>", "</s>")),
            "<s>[INST] hi [/INST] yo </s><s>[INST] q [/INST]");
  // A lone system message: the loop is empty, nothing is printed.
  EXPECT_EQ(render_ok(chat_family::llama2, {sys("x")}, opts("<s>", "</s>")), "");
  // A system message in an odd (assistant) position passes the alternation check and prints nothing.
  EXPECT_EQ(render_ok(chat_family::llama2, {sys("sys"), usr("a"), sys("mid"), usr("b")}, opts("<s>", "</s>")),
            "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\na [/INST]<s>[INST] b [/INST]");
  expect_raise(chat_family::llama2, {sys("sys"), sys("again"), usr("b")},
               "Conversation roles must alternate user/assistant/user/assistant/...");
  expect_raise(chat_family::llama2, {ast("a")}, "Conversation roles must alternate");
}

TEST(chat_template_render, llama3_trims_python_whitespace) {
  // Jinja's trim is Python's str.strip(): Unicode spaces (NBSP, ideographic space, em space) and \x1c-\x1f go too.
  EXPECT_EQ(render_ok(chat_family::llama3,
                      {sys(" \u00a0sys\u3000"), usr("\u2003Hi\u2009 \n"), ast("\x1cok\x1f")},
                      opts("<|begin_of_text|>", "<|eot_id|>")),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\nsys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nok<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\n");
  // Non-space multibyte characters at the edges are kept ("é" ends in a byte that is not whitespace).
  EXPECT_EQ(render_ok(chat_family::llama3_0, {usr("\u00e9 x \u00e9")}, opts("", "", false)),
            "<|start_header_id|>user<|end_header_id|>\n\n\u00e9 x \u00e9<|eot_id|>");
  // Only the first message can be the system block; a later one is an ordinary turn.
  EXPECT_EQ(render_ok(chat_family::llama3, {usr("a"), sys("b")}, opts("<|begin_of_text|>", "", false)),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|>"
            "<|start_header_id|>system<|end_header_id|>\n\nb<|eot_id|>");
}

TEST(chat_template_render, chatml_qwen_default_system_and_later_system) {
  EXPECT_EQ(render_ok(chat_family::chatml_qwen, {usr("a"), sys("b"), ast("c")}, opts("", "<|im_end|>", false)),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n<|im_start|>assistant\nc<|im_end|>\n");
  // Plain chatml never adds a system message.
  EXPECT_EQ(render_ok(chat_family::chatml, {usr("a")}, opts("", "")),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n");
}

TEST(chat_template_render, phi3_skips_empty_system_and_ends_with_eos) {
  EXPECT_EQ(render_ok(chat_family::phi3, {sys(""), usr("a"), ast("b")}, opts("<s>", "<|endoftext|>", false)),
            "<|user|>\na<|end|>\n<|assistant|>\nb<|end|>\n<|endoftext|>");
}

TEST(chat_template_render, mistral_system_only_on_last_user_turn) {
  // The system message goes to the last message only when that is a user turn; otherwise it is dropped.
  EXPECT_EQ(render_ok(chat_family::mistral, {sys("sys"), usr("a"), ast("b")}, opts("<s>", "</s>")),
            "<s>[INST]a[/INST]b</s>");
  EXPECT_EQ(render_ok(chat_family::mistral, {sys("a")}, opts("<s>", "</s>")), "<s>");
  expect_raise(chat_family::mistral, {usr("a"), usr("b")},
               "After the optional system message, conversation roles must alternate "
               "user/assistant/user/assistant/...");
  expect_raise(chat_family::mistral, {usr("a"), ast("b"), sys("c")}, "conversation roles must alternate");
  // A system message in an assistant position passes the alternation pass, then the rendering pass raises.
  expect_raise(chat_family::mistral, {usr("a"), ast("b"), usr("c"), sys("d")},
               "Only user and assistant roles are supported, with the exception of an initial optional system "
               "message!");
}

TEST(chat_template_render, gemma_alternation_and_model_role) {
  EXPECT_EQ(render_ok(chat_family::gemma, {usr("  Hello \n"), ast("Hi"), usr("Q")}, opts("<bos>", "<eos>")),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi<end_of_turn>\n<start_of_turn>user\n"
            "Q<end_of_turn>\n<start_of_turn>model\n");
  // A non-leading system message in an odd position passes the check and prints as its own turn.
  EXPECT_EQ(render_ok(chat_family::gemma, {usr("a"), sys("b")}, opts("<bos>", "<eos>", false)),
            "<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>system\nb<end_of_turn>\n");
  expect_raise(chat_family::gemma, {usr("a"), usr("b")}, "Conversation roles must alternate");
  expect_raise(chat_family::gemma, {sys("s"), ast("b")}, "Conversation roles must alternate");
}

TEST(chat_template_render, deepseek_r1_last_system_and_think_stripping) {
  const std::vector<chat_message> m = {sys("first"),  usr("q1"), ast("<think>\nplan\n</think>\n\nThe answer"),
                                       sys("second"), usr("q2"), ast("a</think>b</think>c")};
  EXPECT_EQ(render_ok(chat_family::deepseek_r1, m,
                      opts("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", false)),
            "<｜begin▁of▁sentence｜>second<｜User｜>q1<｜Assistant｜>\n\nThe answer<｜end▁of▁sentence｜>"
            "<｜User｜>q2"
            "<｜Assistant｜>c<｜end▁of▁sentence｜>");
  EXPECT_EQ(render_ok(chat_family::deepseek_r1, {usr("q")}, opts("", "")), "<｜User｜>q<｜Assistant｜><think>\n");
}

TEST(chat_template_render, command_r_classic_and_r7b) {
  EXPECT_EQ(render_ok(chat_family::command_r, {usr(" Hello "), ast("Hi there"), usr("Who are you")},
                      opts("<BOS_TOKEN>", "", false)),
            "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
            "<|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you"
            "<|END_OF_TURN_TOKEN|>");
  expect_raise(chat_family::command_r, {usr("a"), usr("b")}, "Conversation roles must alternate");

  // R7B: an empty leading system message is no developer preamble, so it prints as its own system turn; the
  // closing chatbot turn is printed even without a generation prompt.
  auto r = render_ok(chat_family::command_r7b, {sys(""), usr("a"), ast("b"), sys("mid")},
                     opts("<BOS_TOKEN>", "", false));
  const std::string head = "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|># System Preamble\nYou are in contextual";
  const std::string tail =
      "then answer.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|><|END_OF_TURN_TOKEN|>"
      "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>a<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
      "<|START_RESPONSE|>b<|END_RESPONSE|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>mid"
      "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
  EXPECT_EQ(r.compare(0, head.size(), head), 0) << r.substr(0, 200);
  ASSERT_GE(r.size(), tail.size());
  EXPECT_EQ(r.substr(r.size() - tail.size()), tail);
  EXPECT_EQ(r.find("Developer Preamble"), std::string::npos);
}

// ---- options and errors

TEST(chat_template_render, strip_leading_bos) {
  auto o = opts("<|begin_of_text|>", "<|eot_id|>");
  o.strip_leading_bos = true;
  auto r = render_ok(chat_family::llama3_0, {usr("hi")}, o);
  EXPECT_EQ(r, "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Only the leading one: llama2 prints bos before every user turn.
  auto o2 = opts("<s>", "</s>");
  o2.strip_leading_bos = true;
  EXPECT_EQ(render_ok(chat_family::llama2, {usr("a"), ast("b"), usr("c")}, o2),
            "[INST] a [/INST] b </s><s>[INST] c [/INST]");
  // A template that prints no bos is left alone, even when the text happens to start like one.
  auto o3 = opts("<|im_start|>", "");
  o3.strip_leading_bos = true;
  EXPECT_EQ(render_ok(chat_family::chatml, {usr("a")}, o3), "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n");
}

TEST(chat_template_render, errors) {
  auto o = opts("<s>", "</s>");
  auto empty = chat_template_render(chat_family::llama3, {}, o);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.err().code, errc::invalid_argument);

  for (const char* role : {"tool", "System", "", "ipython"}) {
    auto r = chat_template_render(chat_family::chatml, {usr("a"), chat_message{role, "x"}}, o);
    ASSERT_FALSE(r.ok()) << role;
    EXPECT_EQ(r.err().code, errc::invalid_argument) << role;
  }

  for (chat_family f : {chat_family::none, chat_family::unknown}) {
    auto r = chat_template_render(f, {usr("a")}, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::unsupported);
  }
}

}  // namespace
}  // namespace lime
