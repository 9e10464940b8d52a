/* Tiny generate plug-ins for generate_plugin_test.cpp, written in plain C to show the ABI needs nothing else.
 *
 * Built three times (plugin.cmake): with the right ABI version, with TEST_PLUGIN_ABI_VERSION=999 (refused by the
 * loader) and with TEST_PLUGIN_NO_VERSION_SYMBOL (no version symbol at all). Each entry point exercises one path
 * of the host: its input, an error it reports, or a misuse the host must catch.
 */
#include <stdio.h>
#include <string.h>

#include "rollout/generate_plugin.h"

#ifndef TEST_PLUGIN_ABI_VERSION
#define TEST_PLUGIN_ABI_VERSION SLIME_GENERATE_ABI_VERSION
#endif

#ifndef TEST_PLUGIN_NO_VERSION_SYMBOL
SLIME_PLUGIN_EXPORT uint32_t slime_generate_abi_version(void) { return TEST_PLUGIN_ABI_VERSION; }
#endif

/* Echoes its input: the prompt tokens as tool tokens, the prompt text and session id as the response text, the
 * label, metadata and sampling parameters in the reward metadata. */
SLIME_PLUGIN_EXPORT int echo_input(const slime_host_api* host, const slime_generate_input* input,
                                   slime_generate_output* out) {
  static const int64_t kNoTokens[1] = {0};
  char text[4096];
  char metadata[8192];
  const slime_sampling_params* p = &input->sampling_params;
  int rc = host->append_response(host, out, input->prompt_tokens, NULL, input->num_prompt_tokens, 0);
  if (rc != SLIME_OK) return rc;
  rc = host->append_response(host, out, kNoTokens, NULL, 0, 0); /* an empty append is allowed */
  if (rc != SLIME_OK) return rc;
  snprintf(text, sizeof text, "%s|%s", input->prompt_text, input->session_id);
  if ((rc = host->set_response_text(host, out, text)) != SLIME_OK) return rc;
  snprintf(metadata, sizeof metadata,
           "{\"label\": %s, \"metadata\": %s, \"evaluation\": %d, \"temperature\": %g, \"top_p\": %g, "
           "\"top_k\": %lld, \"max_new_tokens\": %lld, \"stop\": \"%s\", \"stop_token_id\": %lld, "
           "\"ignore_eos\": %d, \"seed\": %llu, \"vocab_size\": %d}",
           input->label_json, input->metadata_json, input->evaluation, p->temperature, p->top_p,
           (long long)p->top_k, (long long)p->max_new_tokens, p->num_stop > 0 ? p->stop[0] : "",
           p->num_stop_token_ids > 0 ? (long long)p->stop_token_ids[0] : -1LL, p->ignore_eos,
           (unsigned long long)p->seed, host->vocab_size(host));
  if ((rc = host->set_reward_metadata(host, out, metadata)) != SLIME_OK) return rc;
  return host->set_status(host, out, SLIME_STATUS_COMPLETED);
}

/* Reports its own failure. */
SLIME_PLUGIN_EXPORT int failing_generate(const slime_host_api* host, const slime_generate_input* input,
                                         slime_generate_output* out) {
  host->log(host, SLIME_LOG_WARN, "about to fail on purpose");
  host->set_error(host, "sandbox 3 timed out after 30 s");
  return SLIME_ERR_PLUGIN;
}

/* Passes a token outside the vocabulary to generate and returns the code without a message of its own. */
SLIME_PLUGIN_EXPORT int bad_context_no_message(const slime_host_api* host, const slime_generate_input* input,
                                               slime_generate_output* out) {
  const int64_t context[2] = {1, -5};
  slime_generation generation;
  return host->generate(host, context, 2, &input->sampling_params, &generation);
}

/* Appends model tokens without log-probs, ignores the error and claims success. */
SLIME_PLUGIN_EXPORT int ignores_failed_append(const slime_host_api* host, const slime_generate_input* input,
                                              slime_generate_output* out) {
  host->append_response(host, out, input->prompt_tokens, NULL, input->num_prompt_tokens, 1);
  host->set_status(host, out, SLIME_STATUS_COMPLETED);
  return SLIME_OK;
}

/* Returns success without setting a status. */
SLIME_PLUGIN_EXPORT int forgets_status(const slime_host_api* host, const slime_generate_input* input,
                                       slime_generate_output* out) {
  return SLIME_OK;
}

/* Appends one token more than max_new_tokens. */
SLIME_PLUGIN_EXPORT int too_long(const slime_host_api* host, const slime_generate_input* input,
                                 slime_generate_output* out) {
  int64_t i;
  for (i = 0; i <= input->sampling_params.max_new_tokens; ++i) {
    const int64_t token = 7;
    int rc = host->append_response(host, out, &token, NULL, 1, 0);
    if (rc != SLIME_OK) return rc;
  }
  return host->set_status(host, out, SLIME_STATUS_COMPLETED);
}

/* Generates once, keeps the result and a copy of it, and releases both: the second release is a misuse. */
SLIME_PLUGIN_EXPORT int double_free(const slime_host_api* host, const slime_generate_input* input,
                                    slime_generate_output* out) {
  slime_generation generation, copy;
  int rc = host->generate(host, input->prompt_tokens, input->num_prompt_tokens, &input->sampling_params,
                          &generation);
  if (rc != SLIME_OK) return rc;
  copy = generation;
  rc = host->append_response(host, out, generation.tokens, generation.logprobs, generation.num_tokens, 1);
  host->free_generation(host, &generation);
  host->free_generation(host, &copy);
  if (rc != SLIME_OK) return rc;
  return host->set_status(host, out, SLIME_STATUS_COMPLETED);
}

/* Generates once and leaves the buffers to the host (released when the entry point returns). */
SLIME_PLUGIN_EXPORT int single_turn_keeps_buffers(const slime_host_api* host, const slime_generate_input* input,
                                                  slime_generate_output* out) {
  slime_generation generation;
  int rc = host->generate(host, input->prompt_tokens, input->num_prompt_tokens, &input->sampling_params,
                          &generation);
  if (rc != SLIME_OK) return rc;
  rc = host->append_response(host, out, generation.tokens, generation.logprobs, generation.num_tokens, 1);
  if (rc != SLIME_OK) return rc;
  return host->set_status(host, out, generation.finish_reason == SLIME_FINISH_LENGTH ? SLIME_STATUS_TRUNCATED
                                                                                    : SLIME_STATUS_COMPLETED);
}
