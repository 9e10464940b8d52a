// The host side of custom generate plug-ins: dlopen/dlsym with ABI checks, and the C callbacks a plug-in calls.
//
// Every callback is a static function that finds its per-call state through host->host_context and turns any C++
// exception into an error code plus a last_error message, so no exception ever crosses into plug-in code. The
// opaque slime_generate_output is defined here; it holds the PluginSample being built and lives in the call's
// state, so an output from another call is refused.
#include "rollout/generate_plugin_host.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "core/shared_library.h"

// The response under construction (opaque to plug-ins).
struct slime_generate_output {
  slime::rollout::PluginSample sample;
  slime_sample_status status = SLIME_STATUS_UNSET;
  bool text_set = false;
};

namespace slime::rollout {

const char* plugin_status_name(PluginStatus status) {
  switch (status) {
    case PluginStatus::Completed: return "completed";
    case PluginStatus::Truncated: return "truncated";
    case PluginStatus::Aborted: return "aborted";
    case PluginStatus::Failed: return "failed";
  }
  return "?";
}

namespace {

// State of one run(): what the callbacks need, the C views of the input, the buffers handed out.
struct CallContext {
  const std::string* spec = nullptr;
  const PluginInput* input = nullptr;
  const GenerateFn* generate = nullptr;
  const tokenizer::Tokenizer* tok = nullptr;
  slime_host_api api{};
  slime_generate_output output;

  std::string last_error;    // of the last failed host call
  std::string plugin_error;  // set_error's message
  bool plugin_error_set = false;
  std::string output_error;  // the first failed output call: fails the sample even if the plug-in ignores it
  std::unordered_set<void*> live_buffers;  // malloc'ed buffers handed to the plug-in and not yet released

  // The C view of the input.
  std::string label_json, metadata_json;
  std::vector<const char*> stop_pointers;
  slime_generate_input c_input{};
};

CallContext& call_of(const slime_host_api* host) {
  SLIME_CHECK(host != nullptr && host->host_context != nullptr, "plug-in passed a NULL host");
  return *static_cast<CallContext*>(host->host_context);
}

// Runs `body`, turning an exception into `code` with last_error set. Returns SLIME_OK on success.
template <class Body>
int guarded(const slime_host_api* host, const char* what, int code, Body&& body) {
  if (host == nullptr || host->host_context == nullptr) return SLIME_ERR_INVALID_ARGUMENT;
  CallContext& call = call_of(host);
  try {
    call.last_error.clear();
    body(call);
    return SLIME_OK;
  } catch (const std::exception& e) {
    call.last_error = cat(what, ": ", e.what());
    return code;
  } catch (...) {
    call.last_error = cat(what, ": an exception that is not a std::exception");
    return code;
  }
}

// Output calls also record their first failure on the sample.
template <class Body>
int guarded_output(const slime_host_api* host, slime_generate_output* out, const char* what, Body&& body) {
  const int rc = guarded(host, what, SLIME_ERR_INVALID_ARGUMENT, [&](CallContext& call) {
    SLIME_CHECK(out != nullptr, "NULL output");
    SLIME_CHECK(out == &call.output, "an output that does not belong to this call");
    body(call, *out);
  });
  if (rc != SLIME_OK && host != nullptr && host->host_context != nullptr) {
    CallContext& call = call_of(host);
    if (call.output_error.empty()) call.output_error = call.last_error;
  }
  return rc;
}

template <class T>
T* host_alloc(CallContext& call, size_t count) {
  // At least one element, so that every buffer has its own non-NULL address.
  void* buffer = std::malloc(sizeof(T) * (count > 0 ? count : 1));
  SLIME_CHECK(buffer != nullptr, "out of memory allocating ", count, " elements");
  call.live_buffers.insert(buffer);
  return static_cast<T*>(buffer);
}

void host_release(CallContext& call, void* buffer, const char* what) {
  if (buffer == nullptr) return;
  if (call.live_buffers.erase(buffer) == 0) {
    const std::string message = cat(what, ": a buffer this host did not hand out, or one released twice");
    call.last_error = message;
    if (call.output_error.empty()) call.output_error = message;
    return;
  }
  std::free(buffer);
}

void check_tokens(const CallContext& call, const int64_t* tokens, int64_t num_tokens, const char* what) {
  SLIME_CHECK(num_tokens >= 0, what, ": negative token count ", num_tokens);
  SLIME_CHECK(num_tokens == 0 || tokens != nullptr, what, ": NULL tokens with a count of ", num_tokens);
  const int64_t vocab = call.tok->vocab_size();
  for (int64_t i = 0; i < num_tokens; ++i)
    SLIME_CHECK(tokens[i] >= 0 && tokens[i] < vocab, what, ": token ", i, " is ", tokens[i],
                ", outside the vocabulary [0, ", vocab, ")");
}

SamplingParams from_c(const slime_sampling_params& c) {
  SamplingParams params;
  params.temperature = static_cast<float>(c.temperature);
  params.top_p = static_cast<float>(c.top_p);
  params.top_k = c.top_k;
  params.max_new_tokens = c.max_new_tokens;
  SLIME_CHECK(c.num_stop >= 0 && (c.num_stop == 0 || c.stop != nullptr), "sampling params: bad stop list (",
              c.num_stop, " strings)");
  for (int64_t i = 0; i < c.num_stop; ++i) {
    SLIME_CHECK(c.stop[i] != nullptr, "sampling params: stop string ", i, " is NULL");
    params.stop.emplace_back(c.stop[i]);
  }
  SLIME_CHECK(c.num_stop_token_ids >= 0 && (c.num_stop_token_ids == 0 || c.stop_token_ids != nullptr),
              "sampling params: bad stop token list (", c.num_stop_token_ids, " ids)");
  params.stop_token_ids.assign(c.stop_token_ids, c.stop_token_ids + c.num_stop_token_ids);
  params.ignore_eos = c.ignore_eos != 0;
  params.seed = c.seed;
  return params;
}

slime_finish_reason finish_reason_of(const std::string& reason) {
  if (reason == "stop") return SLIME_FINISH_STOP;
  if (reason == "length") return SLIME_FINISH_LENGTH;
  if (reason == "abort") return SLIME_FINISH_ABORT;
  SLIME_FAIL("the engine returned finish reason '", reason, "', expected stop, length or abort");
}

// ---- the callbacks ----------------------------------------------------------------------------------------------

int host_generate(const slime_host_api* host, const int64_t* tokens, int64_t num_tokens,
                  const slime_sampling_params* params, slime_generation* out) {
  if (out != nullptr) *out = slime_generation{};
  // Bad arguments are the plug-in's fault; anything the engine throws is an engine error.
  const int rc = guarded(host, "generate", SLIME_ERR_INVALID_ARGUMENT, [&](CallContext& call) {
    SLIME_CHECK(out != nullptr, "NULL result");
    SLIME_CHECK(params != nullptr, "NULL sampling params");
    SLIME_CHECK(num_tokens > 0, "empty context (", num_tokens, " tokens)");
    check_tokens(call, tokens, num_tokens, "context");
  });
  if (rc != SLIME_OK) return rc;
  return guarded(host, "generate", SLIME_ERR_ENGINE, [&](CallContext& call) {
    GenerateRequest request;
    request.prompt.assign(tokens, tokens + num_tokens);
    request.params = from_c(*params);
    request.session_id = call.input->session_id;
    const GenerateOutput result = (*call.generate)(std::move(request));
    SLIME_CHECK(result.tokens.size() == result.logprobs.size(), "the engine returned ", result.tokens.size(),
                " tokens and ", result.logprobs.size(), " log-probs");
    const slime_finish_reason reason = finish_reason_of(result.finish_reason);
    const size_t n = result.tokens.size();
    slime_generation generation{};
    generation.tokens = host_alloc<int64_t>(call, n);
    generation.logprobs = host_alloc<float>(call, n);
    generation.matched_stop = host_alloc<char>(call, result.matched_stop.size() + 1);
    std::copy(result.tokens.begin(), result.tokens.end(), generation.tokens);
    std::copy(result.logprobs.begin(), result.logprobs.end(), generation.logprobs);
    std::memcpy(generation.matched_stop, result.matched_stop.c_str(), result.matched_stop.size() + 1);
    generation.num_tokens = static_cast<int64_t>(n);
    generation.finish_reason = reason;
    generation.prompt_tokens = result.prompt_tokens;
    generation.cached_tokens = result.cached_tokens;
    generation.weight_version = result.weight_version;
    *out = generation;
    PluginSample& sample = call.output.sample;
    sample.engine_calls += 1;
    sample.prompt_tokens += result.prompt_tokens;
    sample.cached_tokens += result.cached_tokens;
  });
}

void host_free_generation(const slime_host_api* host, slime_generation* generation) {
  if (host == nullptr || host->host_context == nullptr || generation == nullptr) return;
  CallContext& call = call_of(host);
  host_release(call, generation->tokens, "free_generation");
  host_release(call, generation->logprobs, "free_generation");
  host_release(call, generation->matched_stop, "free_generation");
  *generation = slime_generation{};
}

int host_encode(const slime_host_api* host, const char* text, slime_token_ids* out) {
  if (out != nullptr) *out = slime_token_ids{};
  return guarded(host, "encode", SLIME_ERR_TOKENIZER, [&](CallContext& call) {
    SLIME_CHECK(text != nullptr && out != nullptr, "NULL text or result");
    const std::vector<int32_t> ids = call.tok->encode(text, /*add_special_tokens=*/false);
    out->ids = host_alloc<int64_t>(call, ids.size());
    std::copy(ids.begin(), ids.end(), out->ids);
    out->num_ids = static_cast<int64_t>(ids.size());
  });
}

void host_free_token_ids(const slime_host_api* host, slime_token_ids* ids) {
  if (host == nullptr || host->host_context == nullptr || ids == nullptr) return;
  host_release(call_of(host), ids->ids, "free_token_ids");
  *ids = slime_token_ids{};
}

int host_decode(const slime_host_api* host, const int64_t* ids, int64_t num_ids, int32_t skip_special_tokens,
                slime_text* out) {
  if (out != nullptr) *out = slime_text{};
  return guarded(host, "decode", SLIME_ERR_TOKENIZER, [&](CallContext& call) {
    SLIME_CHECK(out != nullptr, "NULL result");
    check_tokens(call, ids, num_ids, "ids");
    const std::string text = call.tok->decode(std::vector<int32_t>(ids, ids + num_ids), skip_special_tokens != 0);
    out->text = host_alloc<char>(call, text.size() + 1);
    std::memcpy(out->text, text.c_str(), text.size() + 1);
    out->length = static_cast<int64_t>(text.size());
  });
}

void host_free_text(const slime_host_api* host, slime_text* text) {
  if (host == nullptr || host->host_context == nullptr || text == nullptr) return;
  host_release(call_of(host), text->text, "free_text");
  *text = slime_text{};
}

int32_t host_vocab_size(const slime_host_api* host) {
  if (host == nullptr || host->host_context == nullptr) return 0;
  return call_of(host).tok->vocab_size();
}

int host_append_response(const slime_host_api* host, slime_generate_output* out, const int64_t* tokens,
                         const float* logprobs, int64_t num_tokens, int32_t trainable) {
  return guarded_output(host, out, "append_response", [&](CallContext& call, slime_generate_output& output) {
    check_tokens(call, tokens, num_tokens, "tokens");
    if (trainable) {
      SLIME_CHECK(num_tokens == 0 || logprobs != nullptr,
                  "trainable (model) tokens need their log-probs, got NULL for ", num_tokens, " tokens");
      for (int64_t i = 0; i < num_tokens; ++i)
        SLIME_CHECK(logprobs[i] <= 0.0f, "log-prob ", i, " is ", logprobs[i], ", expected a value <= 0");
    } else {
      SLIME_CHECK(logprobs == nullptr,
                  "non-trainable (tool / environment) tokens get log-prob 0: pass NULL log-probs");
    }
    PluginSample& sample = output.sample;
    sample.response_tokens.insert(sample.response_tokens.end(), tokens, tokens + num_tokens);
    for (int64_t i = 0; i < num_tokens; ++i) {
      sample.logprobs.push_back(trainable ? logprobs[i] : 0.0f);
      sample.loss_mask.push_back(trainable ? 1 : 0);
    }
  });
}

int64_t host_response_length(const slime_host_api* host, const slime_generate_output* out) {
  if (out == nullptr) return 0;
  return static_cast<int64_t>(out->sample.response_tokens.size());
}

int host_set_status(const slime_host_api* host, slime_generate_output* out, slime_sample_status status) {
  return guarded_output(host, out, "set_status", [&](CallContext&, slime_generate_output& output) {
    switch (status) {
      case SLIME_STATUS_COMPLETED: output.sample.status = PluginStatus::Completed; break;
      case SLIME_STATUS_TRUNCATED: output.sample.status = PluginStatus::Truncated; break;
      case SLIME_STATUS_ABORTED: output.sample.status = PluginStatus::Aborted; break;
      case SLIME_STATUS_FAILED: output.sample.status = PluginStatus::Failed; break;
      default:
        SLIME_FAIL("status ", static_cast<int>(status), " is not one of SLIME_STATUS_COMPLETED (1), TRUNCATED (2), "
                   "ABORTED (3), FAILED (4)");
    }
    output.status = status;
  });
}

int host_set_response_text(const slime_host_api* host, slime_generate_output* out, const char* text) {
  return guarded_output(host, out, "set_response_text", [&](CallContext&, slime_generate_output& output) {
    SLIME_CHECK(text != nullptr, "NULL text");
    output.sample.response_text = text;
    output.text_set = true;
  });
}

int host_set_reward_metadata(const slime_host_api* host, slime_generate_output* out, const char* json_object) {
  return guarded_output(host, out, "set_reward_metadata", [&](CallContext&, slime_generate_output& output) {
    SLIME_CHECK(json_object != nullptr, "NULL JSON text");
    json parsed;
    try {
      parsed = json::parse(json_object);
    } catch (const json::exception& e) {
      SLIME_FAIL("malformed JSON: ", e.what());
    }
    SLIME_CHECK(parsed.is_object(), "expected a JSON object, got ", json_type_name(parsed));
    output.sample.reward_metadata = std::move(parsed);
  });
}

void host_set_error(const slime_host_api* host, const char* message) {
  if (host == nullptr || host->host_context == nullptr) return;
  CallContext& call = call_of(host);
  call.plugin_error = message != nullptr ? message : "(NULL message)";
  call.plugin_error_set = true;
}

const char* host_last_error(const slime_host_api* host) {
  if (host == nullptr || host->host_context == nullptr) return "NULL host";
  return call_of(host).last_error.c_str();
}

void host_log(const slime_host_api* host, int32_t level, const char* message) {
  if (host == nullptr || host->host_context == nullptr) return;
  const std::string line = cat("[", *call_of(host).spec, "] ", message != nullptr ? message : "(NULL)");
  try {
    switch (level) {
      case SLIME_LOG_DEBUG: SLIME_DEBUG(line); break;
      case SLIME_LOG_INFO: SLIME_INFO(line); break;
      case SLIME_LOG_WARN: SLIME_WARN(line); break;
      default: log::write(log::Level::Error, line); break;
    }
  } catch (...) {
    // Logging never fails a sample.
  }
}

}  // namespace

GeneratePlugin GeneratePlugin::load(const std::string& spec) {
  const std::string option = cat("--custom-generate-function-path '", spec, "'");
  const LibrarySpec parsed = parse_library_spec(spec, "--custom-generate-function-path");
  GeneratePlugin plugin;
  plugin.spec_ = spec;
  plugin.library_ = SharedLibrary::open(parsed.path, option);
  auto* version_fn =
      reinterpret_cast<slime_generate_abi_version_fn>(plugin.library_.find(SLIME_GENERATE_ABI_VERSION_SYMBOL));
  SLIME_CHECK(version_fn != nullptr, option, ": '", parsed.path, "' does not export ",
              SLIME_GENERATE_ABI_VERSION_SYMBOL, "() (declare it with SLIME_PLUGIN_EXPORT from "
              "src/rollout/generate_plugin.h)");
  const uint32_t version = version_fn();
  SLIME_CHECK(version == SLIME_GENERATE_ABI_VERSION, option, ": '", parsed.path, "' was built for generate-plug-in "
              "ABI version ", version, ", this slime-hpc speaks version ", SLIME_GENERATE_ABI_VERSION,
              ": rebuild it against src/rollout/generate_plugin.h");
  plugin.entry_ = reinterpret_cast<slime_generate_fn_v1>(plugin.library_.require(parsed.symbol, option));
  return plugin;
}

PluginSample GeneratePlugin::run(const PluginInput& input, const GenerateFn& generate,
                                 const tokenizer::Tokenizer& tok) const {
  SLIME_CHECK(entry_ != nullptr, "custom generate plug-in: run() on a plug-in that was not loaded");
  SLIME_CHECK(generate != nullptr, "custom generate plug-in ", spec_, ": no generate function");
  const std::string where = cat("custom generate plug-in '", spec_, "'");
  for (size_t i = 0; i < input.prompt_tokens.size(); ++i)
    SLIME_CHECK(input.prompt_tokens[i] >= 0 && input.prompt_tokens[i] < tok.vocab_size(), where, ": prompt token ",
                i, " is ", input.prompt_tokens[i], ", outside the vocabulary [0, ", tok.vocab_size(), ")");

  CallContext call;
  call.spec = &spec_;
  call.input = &input;
  call.generate = &generate;
  call.tok = &tok;
  call.label_json = input.label.dump();
  call.metadata_json = input.metadata.is_null() ? "{}" : input.metadata.dump();
  for (const std::string& stop : input.params.stop) call.stop_pointers.push_back(stop.c_str());

  slime_generate_input& c = call.c_input;
  c.prompt_tokens = input.prompt_tokens.data();
  c.num_prompt_tokens = static_cast<int64_t>(input.prompt_tokens.size());
  c.prompt_text = input.prompt_text.c_str();
  c.label_json = call.label_json.c_str();
  c.metadata_json = call.metadata_json.c_str();
  c.session_id = input.session_id.c_str();
  c.evaluation = input.evaluation ? 1 : 0;
  slime_sampling_params& p = c.sampling_params;
  p.temperature = input.params.temperature;
  p.top_p = input.params.top_p;
  p.top_k = input.params.top_k;
  p.max_new_tokens = input.params.max_new_tokens;
  p.stop = call.stop_pointers.data();
  p.num_stop = static_cast<int64_t>(call.stop_pointers.size());
  p.stop_token_ids = input.params.stop_token_ids.data();
  p.num_stop_token_ids = static_cast<int64_t>(input.params.stop_token_ids.size());
  p.ignore_eos = input.params.ignore_eos ? 1 : 0;
  p.seed = input.params.seed;

  slime_host_api& api = call.api;
  api.abi_version = SLIME_GENERATE_ABI_VERSION;
  api.host_context = &call;
  api.generate = host_generate;
  api.free_generation = host_free_generation;
  api.encode = host_encode;
  api.free_token_ids = host_free_token_ids;
  api.decode = host_decode;
  api.free_text = host_free_text;
  api.vocab_size = host_vocab_size;
  api.append_response = host_append_response;
  api.response_length = host_response_length;
  api.set_status = host_set_status;
  api.set_response_text = host_set_response_text;
  api.set_reward_metadata = host_set_reward_metadata;
  api.set_error = host_set_error;
  api.last_error = host_last_error;
  api.log = host_log;

  const int rc = entry_(&api, &c, &call.output);
  // Buffers the plug-in did not release.
  for (void* buffer : call.live_buffers) std::free(buffer);
  call.live_buffers.clear();

  if (rc != SLIME_OK) {
    std::string message = call.plugin_error_set ? call.plugin_error : "(no message: it did not call set_error)";
    if (!call.last_error.empty() && call.last_error != call.plugin_error)
      message += cat("; last failed host call: ", call.last_error);
    SLIME_FAIL(where, " failed (code ", rc, "): ", message);
  }
  SLIME_CHECK(call.output_error.empty(), where, ": a response call failed: ", call.output_error);
  SLIME_CHECK(call.output.status != SLIME_STATUS_UNSET, where, " returned without setting a status (set_status)");
  PluginSample sample = std::move(call.output.sample);
  const int64_t length = static_cast<int64_t>(sample.response_tokens.size());
  SLIME_CHECK(length <= input.params.max_new_tokens, where, ": the response has ", length,
              " tokens, more than max_new_tokens ", input.params.max_new_tokens);
  SLIME_ASSERT(sample.logprobs.size() == sample.response_tokens.size() &&
               sample.loss_mask.size() == sample.response_tokens.size());
  if (!call.output.text_set) {
    try {
      sample.response_text = tok.decode(std::vector<int32_t>(sample.response_tokens.begin(),
                                                             sample.response_tokens.end()));
    } catch (const std::exception& e) {
      SLIME_FAIL(where, ": decoding the response: ", e.what());
    }
  }
  return sample;
}

}  // namespace slime::rollout
