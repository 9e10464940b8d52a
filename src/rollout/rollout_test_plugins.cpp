// Plug-ins for generate_rollout_test.cpp, built as one shared library.
//
//   two_turn_generate       model turn (half the budget), a 2-token tool reply (not trained on), model turn (the
//                           rest of the budget); the status follows the last engine call.
//   keep_if_label_wanted    a dynamic sampling filter: keeps a group whose JSON holds the label "wanted", else drops
//                           it with reason "unwanted"; a group labelled "explode" is an error.
#include <cstdint>
#include <cstring>
#include <vector>

#include "rollout/generate_plugin.h"

SLIME_PLUGIN_EXPORT uint32_t slime_generate_abi_version(void) { return SLIME_GENERATE_ABI_VERSION; }

namespace {

// One engine call on `context`; appends the tokens to the response and to `context`.
int model_turn(const slime_host_api* host, slime_generate_output* out, std::vector<int64_t>& context,
               const slime_sampling_params& params, slime_finish_reason* reason) {
  slime_generation g;
  int rc = host->generate(host, context.data(), static_cast<int64_t>(context.size()), &params, &g);
  if (rc != SLIME_OK) return rc;
  rc = host->append_response(host, out, g.tokens, g.logprobs, g.num_tokens, 1);
  context.insert(context.end(), g.tokens, g.tokens + g.num_tokens);
  *reason = g.finish_reason;
  host->free_generation(host, &g);
  return rc;
}

slime_sample_status status_of(slime_finish_reason reason) {
  switch (reason) {
    case SLIME_FINISH_STOP: return SLIME_STATUS_COMPLETED;
    case SLIME_FINISH_LENGTH: return SLIME_STATUS_TRUNCATED;
    default: return SLIME_STATUS_ABORTED;
  }
}

}  // namespace

SLIME_PLUGIN_EXPORT int two_turn_generate(const slime_host_api* host, const slime_generate_input* input,
                                          slime_generate_output* out) {
  slime_sampling_params params = input->sampling_params;
  const int64_t budget = params.max_new_tokens;
  std::vector<int64_t> context(input->prompt_tokens, input->prompt_tokens + input->num_prompt_tokens);
  slime_finish_reason reason = SLIME_FINISH_LENGTH;
  params.max_new_tokens = budget / 2;
  int rc = model_turn(host, out, context, params, &reason);
  if (rc != SLIME_OK) return rc;
  if (reason == SLIME_FINISH_ABORT) return host->set_status(host, out, SLIME_STATUS_ABORTED);
  const int64_t tool[2] = {1, 2};  // the tool's reply, masked out of the loss
  if ((rc = host->append_response(host, out, tool, nullptr, 2, 0)) != SLIME_OK) return rc;
  context.insert(context.end(), tool, tool + 2);
  params.max_new_tokens = budget - host->response_length(host, out);
  if (params.max_new_tokens <= 0) return host->set_status(host, out, SLIME_STATUS_TRUNCATED);
  params.seed = input->sampling_params.seed + 1;
  if ((rc = model_turn(host, out, context, params, &reason)) != SLIME_OK) return rc;
  if ((rc = host->set_reward_metadata(host, out, "{\"turns\": 2}")) != SLIME_OK) return rc;
  return host->set_status(host, out, status_of(reason));
}

extern "C" __attribute__((visibility("default"))) int32_t keep_if_label_wanted(const char* group_json, char* reason,
                                                                                 int64_t capacity) {
  if (std::strstr(group_json, "\"label\":\"explode\"") != nullptr) {
    std::strncpy(reason, "cannot judge an exploding group", static_cast<size_t>(capacity));
    return -1;
  }
  if (std::strstr(group_json, "\"label\":\"wanted\"") != nullptr) return 1;
  std::strncpy(reason, "unwanted", static_cast<size_t>(capacity));
  return 0;
}
