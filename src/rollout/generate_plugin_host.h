// The host side of custom generate plug-ins (generate_plugin.h): loads "path/to/lib.so:symbol" with dlopen, checks
// the library's ABI version, and runs the entry point on one sample, serving its engine and tokenizer calls and
// collecting the response it builds (tokens, log-probs, loss mask, text, status, reward metadata).
//
// The rollout driver passes a GenerateFn that submits a request to the router and waits for it. run() may be
// called from several threads at once: all per-call state lives in the call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/shared_library.h"
#include "rollout/engine.h"
#include "rollout/generate_plugin.h"
#include "rollout/sampling_params.h"
#include "tokenizer/tokenizer.h"

namespace slime::rollout {

// The sample as the plug-in sees it.
struct PluginInput {
  std::vector<int64_t> prompt_tokens;  // chat template applied
  std::string prompt_text;
  json label;                          // null when none
  json metadata = json::object();
  SamplingParams params;               // params.max_new_tokens bounds the whole response
  std::string session_id;              // router affinity key, passed on to every engine call
  bool evaluation = false;
};

// The sample's final status (slime's Sample.Status: the driver maps it onto data::SampleStatus).
enum class PluginStatus { Completed, Truncated, Aborted, Failed };
const char* plugin_status_name(PluginStatus status);  // "completed", "truncated", "aborted", "failed"

// What the plug-in built.
struct PluginSample {
  std::vector<int64_t> response_tokens;  // [response_length]
  std::vector<float> logprobs;           // [response_length] engine log-probs; 0 for tool tokens
  std::vector<int32_t> loss_mask;        // [response_length] 1 = model token (trained), 0 = tool / environment
  std::string response_text;             // set by the plug-in, else the decoded response tokens
  PluginStatus status = PluginStatus::Completed;
  json reward_metadata;                  // null, or the object the plug-in set
  int64_t engine_calls = 0;              // host->generate calls made
  int64_t cached_tokens = 0;             // summed over the engine calls (prefix-cache hits)
  int64_t prompt_tokens = 0;             // summed context lengths of the engine calls
};

using GenerateFn = std::function<GenerateOutput(GenerateRequest)>;

class GeneratePlugin {
 public:
  // `spec` is "path/to/lib.so:symbol" (the path may itself hold ':'; the last one separates the symbol). Errors:
  // no ':' or an empty side, the file missing, dlopen failing (dlerror's text), the version symbol or the entry
  // symbol missing, an ABI version other than SLIME_GENERATE_ABI_VERSION.
  static GeneratePlugin load(const std::string& spec);

  // Runs the entry point on one sample. Errors (slime::Error naming the spec): the plug-in returned a non-zero
  // code (its set_error message, else the last failed host call's), an output call failed (even if the plug-in
  // ignored it), no status set, a response longer than input.params.max_new_tokens.
  PluginSample run(const PluginInput& input, const GenerateFn& generate, const tokenizer::Tokenizer& tok) const;

  const std::string& spec() const { return spec_; }

 private:
  std::string spec_;
  SharedLibrary library_;  // dlclose'd when the last copy goes
  slime_generate_fn_v1 entry_ = nullptr;
};

}  // namespace slime::rollout
