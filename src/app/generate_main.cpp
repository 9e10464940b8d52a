// slime-generate: text generation from a Hugging Face model directory on the CPU backend.
//
// Loads config.json + safetensors + tokenizer (+ chat template), renders the prompt, samples with the reference
// generator (full recompute per token, no KV cache) and prints the text with per-token log-probs. It is the
// generation demo of this build and a quick way to check a converted or trained checkpoint.
#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/timer.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/generate_reference.h"
#include "model/hf_mapping.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

using namespace slime;

int main(int argc, char** argv) {
  CLI::App app{"slime-generate: sample a completion from a HF model directory (CPU backend)"};
  std::string model_dir, prompt, system_prompt;
  bool raw_prompt = false, show_logprobs = false;
  model::SamplingParams sampling;
  sampling.max_new_tokens = 32;
  app.add_option("--hf-checkpoint", model_dir, "model directory: config.json, *.safetensors, tokenizer files")
      ->required();
  app.add_option("--prompt", prompt, "user message (or raw text with --raw-prompt)")->required();
  app.add_option("--system", system_prompt, "system message for the chat template");
  app.add_flag("--raw-prompt", raw_prompt, "encode the prompt as is, without the chat template");
  app.add_option("--max-new-tokens", sampling.max_new_tokens, "tokens to generate")->capture_default_str();
  app.add_option("--temperature", sampling.temperature, "0 = greedy")->capture_default_str();
  app.add_option("--top-k", sampling.top_k, "-1 = off")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "nucleus mass")->capture_default_str();
  app.add_option("--seed", sampling.seed, "per-request sampling seed")->capture_default_str();
  app.add_flag("--show-logprobs", show_logprobs, "print every generated token with its log-prob");
  CLI11_PARSE(app, argc, argv);

  try {
    Kokkos::ScopeGuard kokkos;  // no argv: Kokkos would answer --help itself
    Stopwatch load_watch;
    model::ModelConfig config = model::ModelConfig::from_hf_dir(model_dir);
    model::Decoder decoder(config);
    model::load_hf_weights(model_dir, config, decoder.params());
    tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_file(path_join(model_dir, "tokenizer.json"));

    std::string text = prompt;
    if (!raw_prompt) {
      const std::string tokenizer_config = path_join(model_dir, "tokenizer_config.json");
      tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_tokenizer_config(tokenizer_config);
      json messages = json::array();
      if (!system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", system_prompt}});
      messages.push_back({{"role", "user"}, {"content", prompt}});
      text = chat.apply(messages, /*add_generation_prompt=*/true);
    }
    std::vector<int32_t> ids = tok.encode(text, /*add_special_tokens=*/raw_prompt);
    std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
    sampling.stop_token_ids = config.eos_token_ids;
    for (const char* stop : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"})
      if (auto id = tok.token_to_id(stop)) sampling.stop_token_ids.push_back(*id);
    std::printf("model %s (%s, %.1fM parameters) loaded in %.2f s\n", model_dir.c_str(), config.architecture.c_str(),
                config.num_parameters() / 1e6, load_watch.seconds());
    std::printf("prompt (%zu tokens):\n%s\n", prompt_ids.size(), text.c_str());

    Stopwatch gen_watch;
    model::Generation gen = model::generate_reference(decoder, prompt_ids, sampling);
    const double seconds = gen_watch.seconds();
    std::vector<int32_t> out_ids(gen.tokens.begin(), gen.tokens.end());
    std::printf("--- completion ---\n%s\n------------------\n", tok.decode(out_ids, /*skip_special_tokens=*/false).c_str());
    if (show_logprobs) {
      for (size_t i = 0; i < gen.tokens.size(); ++i)
        std::printf("  %4zu  id %6lld  logprob %9.4f  %s\n", i, static_cast<long long>(gen.tokens[i]),
                    gen.logprobs[i], json(tok.decode({out_ids[i]})).dump().c_str());
    }
    double sum_logprob = 0;
    for (float lp : gen.logprobs) sum_logprob += lp;
    std::printf("finish_reason %s, %zu tokens in %.2f s (%.1f tokens/s, reference generator without KV cache), "
                "mean logprob %.3f\n",
                gen.finish_reason.c_str(), gen.tokens.size(), seconds, gen.tokens.size() / std::max(seconds, 1e-9),
                gen.tokens.empty() ? 0.0 : sum_logprob / gen.tokens.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slime-generate: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
