// Custom generate plug-ins: the calculator example against a scripted engine (tool results, loss mask, log-probs,
// turn and token limits, bad expressions), the same plug-in end to end with the real engine and Qwen3 tokenizer,
// the loader's errors, and the host's checks on what a plug-in does (test plug-ins in generate_plugin_test_plugins.c).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/io.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/engine.h"
#include "rollout/generate_plugin_host.h"
#include "rollout/router.h"
#include "tokenizer/test_fixtures.h"
#include "tokenizer/tokenizer.h"

using namespace slime;
using namespace slime::rollout;

namespace {

const tokenizer::Tokenizer& qwen3_tokenizer() { return tokenizer::test::fixture_tokenizer("qwen3"); }

std::vector<int64_t> encode(const std::string& text) {
  const std::vector<int32_t> ids = qwen3_tokenizer().encode(text, false);
  return {ids.begin(), ids.end()};
}

std::string decode(const std::vector<int64_t>& ids) {
  return qwen3_tokenizer().decode(std::vector<int32_t>(ids.begin(), ids.end()));
}

// A fake engine: call k "generates" the tokens of turns[k], one at a time, stopping like the real engine at the
// first stop string in the decoded text, at max_new_tokens, or at the end of the text (as at an end-of-sequence
// token, which the last token of the script stands for). Log-probs are distinct negative numbers, so they can be traced into the response.
struct ScriptedEngine {
  explicit ScriptedEngine(std::vector<std::string> script_turns) : turns(std::move(script_turns)) {}

  std::vector<std::string> turns;
  std::vector<GenerateRequest> requests;
  std::vector<GenerateOutput> outputs;
  int64_t logprob_counter = 0;

  GenerateOutput operator()(GenerateRequest request) {
    if (requests.size() >= turns.size()) throw Error("scripted engine: no turn left in the script");
    const std::vector<int64_t> script = encode(turns[requests.size()]);
    GenerateOutput out;
    out.prompt_tokens = static_cast<int64_t>(request.prompt.size());
    out.finish_reason = "stop";
    for (const int64_t token : script) {
      if (static_cast<int64_t>(out.tokens.size()) >= request.params.max_new_tokens) {
        out.finish_reason = "length";
        break;
      }
      out.tokens.push_back(token);
      out.logprobs.push_back(-0.5f - 0.001f * static_cast<float>(logprob_counter++));
      const std::string text = decode(out.tokens);
      bool stopped = false;
      for (const std::string& stop : request.params.stop)
        if (text.find(stop) != std::string::npos) {
          out.matched_stop = stop;
          stopped = true;
          break;
        }
      if (stopped) break;
    }
    requests.push_back(request);
    outputs.push_back(out);
    return out;
  }
};

std::string calculator_spec() { return std::string(SLIME_CALCULATOR_PLUGIN) + ":slime_calculator_generate"; }

PluginInput calculator_input(const std::string& question, int64_t max_new_tokens, json metadata = json::object()) {
  PluginInput input;
  input.prompt_text = question;
  input.prompt_tokens = encode(question);
  input.metadata = std::move(metadata);
  input.params.max_new_tokens = max_new_tokens;
  input.session_id = "session-1";
  return input;
}

PluginSample run_scripted(const GeneratePlugin& plugin, const PluginInput& input, ScriptedEngine& engine) {
  GenerateFn generate = [&engine](GenerateRequest request) { return engine(std::move(request)); };
  return plugin.run(input, generate, qwen3_tokenizer());
}

template <class T>
std::vector<T> concat(std::vector<T> a, const std::vector<T>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("calculator: the tool result is exact and non-trainable, model tokens keep the engine's log-probs") {
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  const PluginInput input = calculator_input("What is 12*(3+4)? Use the calculator.", 200);
  ScriptedEngine engine{{"Let me compute. <calculator>12*(3+4)</calculator>", " So the answer is 84."}};
  const PluginSample sample = run_scripted(plugin, input, engine);

  REQUIRE(engine.requests.size() == 2);
  const std::vector<int64_t> tool = encode("<result>84</result>");
  const GenerateOutput& first = engine.outputs[0];
  const GenerateOutput& second = engine.outputs[1];
  CHECK(first.finish_reason == "stop");
  CHECK(first.matched_stop == "</calculator>");
  // The engine is asked for the tool-call stop, and the second turn continues from the exact tokens so far.
  CHECK(engine.requests[0].prompt == input.prompt_tokens);
  CHECK(engine.requests[0].params.stop == std::vector<std::string>{"</calculator>"});
  CHECK(engine.requests[0].params.max_new_tokens == 200);
  CHECK(engine.requests[0].session_id == "session-1");
  // Each turn draws from its own sampling stream (the engine indexes a stream by position in the call's output).
  CHECK(engine.requests[0].params.seed == input.params.seed);
  CHECK(engine.requests[1].params.seed != engine.requests[0].params.seed);
  CHECK(engine.requests[1].prompt == concat(concat(input.prompt_tokens, first.tokens), tool));
  CHECK(engine.requests[1].params.max_new_tokens ==
        200 - static_cast<int64_t>(first.tokens.size() + tool.size()));

  CHECK(sample.response_tokens == concat(concat(first.tokens, tool), second.tokens));
  REQUIRE(sample.loss_mask.size() == sample.response_tokens.size());
  REQUIRE(sample.logprobs.size() == sample.response_tokens.size());
  size_t at = 0;
  for (size_t i = 0; i < first.tokens.size(); ++i, ++at) {
    CHECK(sample.loss_mask[at] == 1);
    CHECK(sample.logprobs[at] == first.logprobs[i]);
  }
  for (size_t i = 0; i < tool.size(); ++i, ++at) {
    CHECK(sample.loss_mask[at] == 0);
    CHECK(sample.logprobs[at] == 0.0f);
  }
  for (size_t i = 0; i < second.tokens.size(); ++i, ++at) {
    CHECK(sample.loss_mask[at] == 1);
    CHECK(sample.logprobs[at] == second.logprobs[i]);
  }
  CHECK(sample.response_text ==
        "Let me compute. <calculator>12*(3+4)</calculator><result>84</result> So the answer is 84.");
  CHECK(sample.status == PluginStatus::Completed);
  CHECK(sample.engine_calls == 2);
  CHECK(sample.reward_metadata == json({{"turns", 2}, {"tool_calls", 1}, {"tool_errors", 0}}));
}

TEST_CASE("calculator: rationals, decimals, precedence, and bad expressions answered with an error result") {
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1/3 + 1/6", "1/2"},
      {"-(2.5*4) + 3", "-7"},
      {"2 + 3 * 4 - 10 / 4", "23/2"},
      {"((1))", "1"},
      {"0.1 + 0.2", "3/10"},
      {"3037000500 * 3037000500", "error: number too large"},  // 9223372037000250000 > 2^63 - 1
      {"9223372036854775807 + 1", "error: number too large"},
      {"7 / (3 - 3)", "error: division by zero"},
      {"12*(3+", "error: expected a number at the end"},
      {"12*(3+4", "error: missing ')' at position 7"},
      {"2 * x", "error: expected a number at position 4, found 'x'"},
      {"", "error: empty expression"},
      {"1 2", "error: unexpected '2' at position 2"},
  };
  for (const auto& [expression, expected] : cases) {
    INFO("expression '" << expression << "'");
    ScriptedEngine engine{{"<calculator>" + expression + "</calculator>", " Done."}};
    const PluginSample sample = run_scripted(plugin, calculator_input("Compute.", 100), engine);
    REQUIRE(engine.requests.size() == 2);
    const std::string tool_text = "<result>" + expected + "</result>";
    const std::vector<int64_t> tool = encode(tool_text);
    const size_t start = engine.outputs[0].tokens.size();
    REQUIRE(sample.response_tokens.size() == start + tool.size() + engine.outputs[1].tokens.size());
    CHECK(std::vector<int64_t>(sample.response_tokens.begin() + start,
                               sample.response_tokens.begin() + start + tool.size()) == tool);
    for (size_t i = start; i < start + tool.size(); ++i) CHECK(sample.loss_mask[i] == 0);
    CHECK(sample.status == PluginStatus::Completed);
    const bool is_error = tool_text.find("error") != std::string::npos;
    CHECK(sample.reward_metadata["tool_errors"] == (is_error ? 1 : 0));
  }
  // A product just below 2^63 - 1 still fits.
  ScriptedEngine engine{{"<calculator>3037000499 * 3037000499</calculator>", "."}};
  const PluginSample sample = run_scripted(plugin, calculator_input("Compute.", 100), engine);
  CHECK(sample.response_text.find("<result>9223372030926249001</result>") != std::string::npos);
}

TEST_CASE("calculator: at most max_turns model turns (metadata, default 4)") {
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  const std::vector<std::string> always_calls(8, "Again <calculator>1+1</calculator>");
  {
    ScriptedEngine engine{always_calls};
    const PluginSample sample = run_scripted(plugin, calculator_input("Loop.", 500, {{"max_turns", 2}}), engine);
    CHECK(engine.requests.size() == 2);
    // The last turn's tool call is not answered: no model turn is left to read it.
    const std::vector<int64_t> tool = encode("<result>2</result>");
    CHECK(sample.response_tokens ==
          concat(concat(engine.outputs[0].tokens, tool), engine.outputs[1].tokens));
    CHECK(sample.status == PluginStatus::Truncated);
    CHECK(sample.reward_metadata == json({{"turns", 2}, {"tool_calls", 1}, {"tool_errors", 0}}));
  }
  {
    ScriptedEngine engine{always_calls};
    const PluginSample sample = run_scripted(plugin, calculator_input("Loop.", 500), engine);
    CHECK(engine.requests.size() == 4);
    CHECK(sample.reward_metadata["tool_calls"] == 3);
    CHECK(sample.status == PluginStatus::Truncated);
  }
  {
    ScriptedEngine engine{{"No tool needed."}};
    const PluginSample sample = run_scripted(plugin, calculator_input("Say something.", 500, {{"max_turns", 1}}),
                                             engine);
    CHECK(engine.requests.size() == 1);
    CHECK(sample.status == PluginStatus::Completed);
    CHECK(sample.loss_mask == std::vector<int32_t>(sample.response_tokens.size(), 1));
  }
  ScriptedEngine engine{always_calls};
  CHECK_THROWS_WITH(run_scripted(plugin, calculator_input("Loop.", 500, {{"max_turns", 0}}), engine),
                    Catch::Contains("slime_calculator_generate' failed (code 4): calculator: metadata field "
                                    "'max_turns': expected an integer >= 1, got 0"));
}

TEST_CASE("calculator: the whole response respects max_new_tokens") {
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  const std::string call = "<calculator>12*(3+4)</calculator>";
  const int64_t call_length = static_cast<int64_t>(encode(call).size());
  const std::vector<int64_t> tool = encode("<result>84</result>");
  const int64_t tool_length = static_cast<int64_t>(tool.size());
  REQUIRE(tool_length > 2);
  const std::vector<std::string> script = {call, " The answer is eighty-four, as computed above."};
  {  // the tool result is cut to the budget; the model gets no second turn
    ScriptedEngine engine{script};
    const PluginSample sample = run_scripted(plugin, calculator_input("Q", call_length + 2), engine);
    CHECK(engine.requests.size() == 1);
    CHECK(static_cast<int64_t>(sample.response_tokens.size()) == call_length + 2);
    CHECK(std::vector<int64_t>(sample.response_tokens.end() - 2, sample.response_tokens.end()) ==
          std::vector<int64_t>(tool.begin(), tool.begin() + 2));
    CHECK(sample.status == PluginStatus::Truncated);
  }
  {  // the second turn gets what is left, and is cut by the engine at that length
    ScriptedEngine engine{script};
    const PluginSample sample = run_scripted(plugin, calculator_input("Q", call_length + tool_length + 3), engine);
    REQUIRE(engine.requests.size() == 2);
    CHECK(engine.requests[1].params.max_new_tokens == 3);
    CHECK(engine.outputs[1].finish_reason == "length");
    CHECK(static_cast<int64_t>(sample.response_tokens.size()) == call_length + tool_length + 3);
    CHECK(sample.status == PluginStatus::Truncated);
  }
  {  // the budget ends exactly after the tool result: no engine call with nothing to generate
    ScriptedEngine engine{script};
    const PluginSample sample = run_scripted(plugin, calculator_input("Q", call_length + tool_length), engine);
    CHECK(engine.requests.size() == 1);
    CHECK(static_cast<int64_t>(sample.response_tokens.size()) == call_length + tool_length);
    CHECK(sample.status == PluginStatus::Truncated);
  }
  {  // the first turn itself is cut
    ScriptedEngine engine{script};
    const PluginSample sample = run_scripted(plugin, calculator_input("Q", 3), engine);
    CHECK(engine.requests.size() == 1);
    CHECK(sample.response_tokens.size() == 3);
    CHECK(sample.reward_metadata["tool_calls"] == 0);
    CHECK(sample.status == PluginStatus::Truncated);
  }
}

TEST_CASE("calculator: an aborted engine call ends the sample as aborted, keeping its tokens") {
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  ScriptedEngine script{{"<calculator>1+2</calculator>", "The answer"}};
  GenerateFn generate = [&script](GenerateRequest request) {
    GenerateOutput out = script(std::move(request));
    if (script.requests.size() == 2) out.finish_reason = "abort";
    return out;
  };
  const PluginSample sample = plugin.run(calculator_input("Q", 100), generate, qwen3_tokenizer());
  CHECK(sample.status == PluginStatus::Aborted);
  CHECK(sample.response_text == "<calculator>1+2</calculator><result>3</result>The answer");
}

TEST_CASE("calculator: concurrent samples on several threads do not interfere") {
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  const int threads = 4;
  std::vector<PluginSample> samples(threads);
  std::vector<std::string> errors(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      try {
        for (int repeat = 0; repeat < 5; ++repeat) {
          ScriptedEngine engine{{"<calculator>" + std::to_string(t) + "*7</calculator>", " ok"}};
          samples[t] = run_scripted(plugin, calculator_input("Q", 100), engine);
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (std::thread& w : workers) w.join();
  for (int t = 0; t < threads; ++t) {
    INFO("thread " << t);
    CHECK(errors[t].empty());
    CHECK(samples[t].response_text ==
          "<calculator>" + std::to_string(t) + "*7</calculator><result>" + std::to_string(t * 7) + "</result> ok");
  }
}

TEST_CASE("calculator end to end with the real engine and the Qwen3 tokenizer: the response is what the engine made") {
  const tokenizer::Tokenizer& tok = qwen3_tokenizer();
  json j = json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
    "max_position_embeddings": 96, "tie_word_embeddings": false})");
  j["vocab_size"] = tok.vocab_size();  // every id the random model samples has a token
  const model::ModelConfig config = model::ModelConfig::from_hf_json(j, "tiny-qwen3");
  model::Decoder model(config);
  model::init_random(config, model.params(), 21, 0.5f);
  EngineConfig engine_config;
  engine_config.num_blocks = 64;
  engine_config.block_size = 8;
  Engine engine(model, engine_config, &tok);
  Router router({&engine});

  std::vector<GenerateOutput> outputs;
  GenerateFn generate = [&](GenerateRequest request) {  // what the rollout driver does: submit, step until done
    const int64_t id = router.submit(std::move(request));
    while (router.has_unfinished())
      for (auto& [done_id, out] : router.step())
        if (done_id == id) {
          outputs.push_back(out);
          return out;
        }
    throw Error("the router finished without the request");
  };
  const GeneratePlugin plugin = GeneratePlugin::load(calculator_spec());
  for (uint64_t seed : {1u, 2u, 3u}) {
    INFO("seed " << seed);
    outputs.clear();
    PluginInput input = calculator_input("What is 12*(3+4)? Answer with the calculator.", 24);
    input.params.temperature = 1.0f;
    input.params.seed = seed;
    const PluginSample sample = plugin.run(input, generate, tok);
    // A random model does not call the tool: one engine call, every token the model's own.
    REQUIRE(outputs.size() == 1);
    CHECK(outputs[0].matched_stop.empty());
    CHECK(sample.engine_calls == 1);
    CHECK(sample.response_tokens == outputs[0].tokens);
    CHECK(sample.logprobs == outputs[0].logprobs);
    CHECK(sample.loss_mask == std::vector<int32_t>(outputs[0].tokens.size(), 1));
    CHECK(sample.response_tokens.size() <= 24);
    CHECK(sample.response_text == decode(outputs[0].tokens));
    CHECK(sample.status == (outputs[0].finish_reason == "length" ? PluginStatus::Truncated : PluginStatus::Completed));
    CHECK(sample.prompt_tokens == static_cast<int64_t>(input.prompt_tokens.size()));
  }
}

TEST_CASE("plug-in loader errors name the spec, the file and the symbol") {
  const std::string ok = SLIME_TEST_PLUGIN;
  CHECK_THROWS_WITH(GeneratePlugin::load("libcalc.so"), Catch::Contains("--custom-generate-function-path "
                                                                        "'libcalc.so': expected 'path/to/lib.so:symbol', found no ':'"));
  CHECK_THROWS_WITH(GeneratePlugin::load(":generate"), Catch::Contains("the library path is empty"));
  CHECK_THROWS_WITH(GeneratePlugin::load(ok + ":"), Catch::Contains("the symbol is empty"));
  CHECK_THROWS_WITH(GeneratePlugin::load("/no/such/dir/libx.so:generate"),
                    Catch::Contains("plug-in library '/no/such/dir/libx.so' not found"));
  CHECK_THROWS_WITH(GeneratePlugin::load(ok + ":no_such_function"),
                    Catch::Contains("symbol 'no_such_function' not found in '" + ok + "'"));
  CHECK_THROWS_WITH(GeneratePlugin::load(std::string(SLIME_TEST_PLUGIN_WRONG_ABI) + ":echo_input"),
                    Catch::Contains("was built for generate-plug-in ABI version 999, this slime-hpc speaks version 1"));
  CHECK_THROWS_WITH(GeneratePlugin::load(std::string(SLIME_TEST_PLUGIN_NO_VERSION) + ":echo_input"),
                    Catch::Contains("does not export slime_generate_abi_version()"));
  // A file that is not a shared library: dlopen's own message comes through.
  const std::string not_a_library = std::string(std::getenv("SLIME_BUILD_DIR") ? std::getenv("SLIME_BUILD_DIR") : ".") +
                                    "/generate_plugin_test_not_a_library.so";
  std::ofstream(not_a_library) << std::string(512, '#') << "\n";  // longer than an ELF header
  CHECK_THROWS_WITH(GeneratePlugin::load(not_a_library + ":f"),
                    Catch::Contains("cannot load '" + not_a_library + "': ") &&
                        Catch::Contains("invalid ELF header"));
  std::remove(not_a_library.c_str());
  CHECK_NOTHROW(GeneratePlugin::load(ok + ":echo_input"));
}

TEST_CASE("the plug-in sees its input; failures, misuse and inconsistent output surface as errors") {
  const tokenizer::Tokenizer& tok = qwen3_tokenizer();
  const std::string lib = SLIME_TEST_PLUGIN;
  PluginInput input = calculator_input("Hi there", 16, {{"max_turns", 3}, {"source", "unit"}});
  input.label = "42";
  input.evaluation = true;
  input.params.temperature = 0.5f;
  input.params.top_p = 0.75f;
  input.params.top_k = 20;
  input.params.stop = {"###"};
  input.params.stop_token_ids = {151645};
  input.params.ignore_eos = true;
  input.params.seed = 1234;
  ScriptedEngine engine{{"one", "two"}};
  GenerateFn generate = [&engine](GenerateRequest request) { return engine(std::move(request)); };

  const PluginSample echo = GeneratePlugin::load(lib + ":echo_input").run(input, generate, tok);
  CHECK(echo.response_tokens == input.prompt_tokens);
  CHECK(echo.loss_mask == std::vector<int32_t>(input.prompt_tokens.size(), 0));
  CHECK(echo.logprobs == std::vector<float>(input.prompt_tokens.size(), 0.0f));
  CHECK(echo.response_text == "Hi there|session-1");
  CHECK(echo.reward_metadata == json({{"label", "42"}, {"metadata", {{"max_turns", 3}, {"source", "unit"}}},
                                      {"evaluation", 1}, {"temperature", 0.5}, {"top_p", 0.75}, {"top_k", 20},
                                      {"max_new_tokens", 16}, {"stop", "###"}, {"stop_token_id", 151645},
                                      {"ignore_eos", 1}, {"seed", 1234}, {"vocab_size", tok.vocab_size()}}));

  input.params.stop.clear();
  const PluginSample single = GeneratePlugin::load(lib + ":single_turn_keeps_buffers").run(input, generate, tok);
  CHECK(single.response_tokens == engine.outputs.back().tokens);
  CHECK(single.loss_mask == std::vector<int32_t>(single.response_tokens.size(), 1));

  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":failing_generate").run(input, generate, tok),
                    Catch::Contains(lib + ":failing_generate' failed (code 4): sandbox 3 timed out after 30 s"));
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":bad_context_no_message").run(input, generate, tok),
                    Catch::Contains("failed (code 1): (no message: it did not call set_error); last failed host "
                                    "call: generate: context: token 1 is -5, outside the vocabulary [0, 151669)"));
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":ignores_failed_append").run(input, generate, tok),
                    Catch::Contains("a response call failed: append_response: trainable (model) tokens need their "
                                    "log-probs, got NULL for 2 tokens"));
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":forgets_status").run(input, generate, tok),
                    Catch::Contains("returned without setting a status"));
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":too_long").run(input, generate, tok),
                    Catch::Contains("the response has 17 tokens, more than max_new_tokens 16"));
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":double_free").run(input, generate, tok),
                    Catch::Contains("free_generation: a buffer this host did not hand out, or one released twice"));
  // An engine failure reaches the plug-in as SLIME_ERR_ENGINE with the engine's message.
  GenerateFn broken = [](GenerateRequest) -> GenerateOutput { throw Error("rollout engine: KV cache too small"); };
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":single_turn_keeps_buffers").run(input, broken, tok),
                    Catch::Contains("failed (code 2): (no message: it did not call set_error); last failed host "
                                    "call: generate: rollout engine: KV cache too small"));
  // A prompt token outside the vocabulary is refused before the plug-in runs.
  input.prompt_tokens.push_back(tok.vocab_size());
  CHECK_THROWS_WITH(GeneratePlugin::load(lib + ":echo_input").run(input, generate, tok),
                    Catch::Contains("prompt token 2 is 151669, outside the vocabulary [0, 151669)"));
}
