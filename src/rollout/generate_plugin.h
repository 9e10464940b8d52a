/* The C ABI of custom generate plug-ins (slime's --custom-generate-function-path, as a shared library).
 *
 * A plug-in replaces the per-sample generation of the rollout: it gets one sample (prompt tokens and text, label,
 * metadata, sampling parameters), may call the engine any number of times (multi-turn, tool calls), and builds the
 * response: model tokens with their log-probs (loss mask 1) and tool / environment tokens (loss mask 0, log-prob 0),
 * as slime's Sample.append_response_tokens(trainable=...) does. It is named on the command line as
 *
 *     --custom-generate-function-path path/to/libmy_plugin.so:my_generate
 *
 * and loaded with dlopen. Only plain C types cross the boundary, so a plug-in may be written in C, C++ (any
 * standard library) or anything that exports C symbols.
 *
 * What a plug-in exports
 *   uint32_t slime_generate_abi_version(void);   returns SLIME_GENERATE_ABI_VERSION of the header it was built with;
 *                                                the host refuses a library whose version differs from its own.
 *   int my_generate(const slime_host_api*, const slime_generate_input*, slime_generate_output*);
 *                                                the entry point (any name; type slime_generate_fn_v1). Returns
 *                                                SLIME_OK, or a non-zero code after host->set_error(host, message).
 *   Use SLIME_PLUGIN_EXPORT on both (extern "C", default visibility).
 *
 * Rules of the contract
 *   - The output is opaque: the plug-in fills it only through host->append_response / set_status / ..., so the
 *     token, log-prob and loss-mask arrays are always the same length. A failed output call returns non-zero and
 *     also fails the sample, even if the plug-in ignores the code.
 *   - set_status is required: COMPLETED (the model finished), TRUNCATED (a length or turn limit cut it), ABORTED
 *     (the engine aborted a request: finish_reason ABORT) or FAILED (the sample is not usable, e.g. an environment
 *     error; it is still returned, not raised).
 *   - Buffers the host hands out (slime_generation arrays, slime_token_ids, slime_text) belong to the host: release
 *     them with host->free_generation / free_token_ids / free_text. Whatever is still held when the entry point
 *     returns is released then. No pointer from the host (input included) may be kept after the entry point returns.
 *   - Strings are UTF-8, NUL-terminated; lengths are element counts.
 *   - The entry point may run on several threads at once (one sample each); each call gets its own host and output
 *     objects, so a plug-in with no mutable global state is thread-safe. C++ exceptions must not leave the entry
 *     point.
 *   - Host calls return SLIME_OK or an error code; host->last_error(host) then says what went wrong (valid until the
 *     next host call on the same host).
 */
#ifndef SLIME_ROLLOUT_GENERATE_PLUGIN_H_
#define SLIME_ROLLOUT_GENERATE_PLUGIN_H_

#include <stdint.h>

#ifdef __cplusplus
#define SLIME_PLUGIN_EXTERN_C extern "C"
extern "C" {
#else
#define SLIME_PLUGIN_EXTERN_C
#endif

/* Bump on any change to a struct below or to a function's meaning. */
#define SLIME_GENERATE_ABI_VERSION 1u

#define SLIME_PLUGIN_EXPORT SLIME_PLUGIN_EXTERN_C __attribute__((visibility("default")))

/* Return codes of host calls and of the entry point. */
enum {
  SLIME_OK = 0,
  SLIME_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a negative count, a token outside the vocabulary, ... */
  SLIME_ERR_ENGINE = 2,           /* the engine refused or failed the request (message in last_error) */
  SLIME_ERR_TOKENIZER = 3,        /* encode/decode failed (invalid UTF-8, an id with no token) */
  SLIME_ERR_PLUGIN = 4            /* free for plug-ins: their own failures */
};

/* Finish reason of one engine call (SGLang's meta_info.finish_reason.type). */
typedef enum slime_finish_reason {
  SLIME_FINISH_STOP = 0,   /* end-of-sequence token, a stop token id or a stop string */
  SLIME_FINISH_LENGTH = 1, /* max_new_tokens or the context length */
  SLIME_FINISH_ABORT = 2   /* aborted by the rollout (enough groups collected, shutdown) */
} slime_finish_reason;

/* Status of the finished sample (slime's Sample.Status, less PENDING). */
typedef enum slime_sample_status {
  SLIME_STATUS_UNSET = 0, /* initial value: returning with it is an error */
  SLIME_STATUS_COMPLETED = 1,
  SLIME_STATUS_TRUNCATED = 2,
  SLIME_STATUS_ABORTED = 3,
  SLIME_STATUS_FAILED = 4
} slime_sample_status;

/* Log levels of host->log. */
enum { SLIME_LOG_DEBUG = 0, SLIME_LOG_INFO = 1, SLIME_LOG_WARN = 2, SLIME_LOG_ERROR = 3 };

/* Sampling parameters of one engine call (--rollout-temperature, --rollout-top-p, ...). */
typedef struct slime_sampling_params {
  double temperature;              /* 0 = greedy */
  double top_p;                    /* (0, 1] */
  int64_t top_k;                   /* -1 = off */
  int64_t max_new_tokens;          /* >= 0 */
  const char* const* stop;         /* [num_stop] stop strings, matched on the decoded text of this call's tokens */
  int64_t num_stop;
  const int64_t* stop_token_ids;   /* [num_stop_token_ids] besides the model's end-of-sequence ids */
  int64_t num_stop_token_ids;
  int32_t ignore_eos;              /* non-zero: do not stop at the end-of-sequence ids */
  uint64_t seed;                   /* sampling stream: same seed, same context, same tokens */
} slime_sampling_params;

/* The sample handed to the entry point. Read-only; valid until the entry point returns. */
typedef struct slime_generate_input {
  const int64_t* prompt_tokens;          /* [num_prompt_tokens] the prompt as token ids (chat template applied) */
  int64_t num_prompt_tokens;
  const char* prompt_text;               /* the prompt as text ("" when the sample has only ids) */
  const char* label_json;                /* the sample's label as JSON text ("null" when none) */
  const char* metadata_json;             /* the sample's metadata as JSON text ("{}" when none) */
  const char* session_id;                /* router affinity key ("" when none) */
  int32_t evaluation;                    /* non-zero during evaluation rollouts */
  slime_sampling_params sampling_params; /* the rollout's parameters; max_new_tokens bounds the WHOLE response */
} slime_generate_input;

/* Result of host->generate. Arrays are allocated by the host: release with host->free_generation. */
typedef struct slime_generation {
  int64_t* tokens;            /* [num_tokens] generated ids */
  float* logprobs;            /* [num_tokens] log-prob of each id, from softmax(logits / temperature) */
  int64_t num_tokens;
  slime_finish_reason finish_reason;
  char* matched_stop;         /* the stop string that ended the call, "" when none */
  int64_t prompt_tokens;      /* context length of the call */
  int64_t cached_tokens;      /* context tokens served from the prefix cache */
  int64_t weight_version;     /* weights that produced the tokens */
} slime_generation;

/* Result of host->encode. Release with host->free_token_ids. */
typedef struct slime_token_ids {
  int64_t* ids; /* [num_ids] */
  int64_t num_ids;
} slime_token_ids;

/* Result of host->decode. Release with host->free_text. */
typedef struct slime_text {
  char* text; /* NUL-terminated UTF-8 */
  int64_t length;
} slime_text;

/* Opaque: the response being built; only host calls touch it. */
typedef struct slime_generate_output slime_generate_output;

typedef struct slime_host_api slime_host_api;
struct slime_host_api {
  uint32_t abi_version; /* SLIME_GENERATE_ABI_VERSION of the host */
  void* host_context;   /* the host's; plug-ins must not touch it */

  /* ---- engine and tokenizer ---- */
  /* Generates a continuation of `tokens` (the whole context: prompt, earlier turns, tool results). Token-in,
   * token-out: nothing is re-tokenized. */
  int (*generate)(const slime_host_api* host, const int64_t* tokens, int64_t num_tokens,
                  const slime_sampling_params* params, slime_generation* out);
  void (*free_generation)(const slime_host_api* host, slime_generation* generation);
  /* Text -> ids without special tokens added by the post-processor (added tokens written in the text are found). */
  int (*encode)(const slime_host_api* host, const char* text, slime_token_ids* out);
  void (*free_token_ids)(const slime_host_api* host, slime_token_ids* ids);
  int (*decode)(const slime_host_api* host, const int64_t* ids, int64_t num_ids, int32_t skip_special_tokens,
                slime_text* out);
  void (*free_text)(const slime_host_api* host, slime_text* text);
  int32_t (*vocab_size)(const slime_host_api* host);

  /* ---- the response ---- */
  /* Appends tokens to the response. trainable != 0: model tokens, `logprobs` required ([num_tokens], the values
   * generate returned), loss mask 1. trainable == 0: tool / environment tokens, `logprobs` must be NULL; they get
   * loss mask 0 and log-prob 0. */
  int (*append_response)(const slime_host_api* host, slime_generate_output* out, const int64_t* tokens,
                         const float* logprobs, int64_t num_tokens, int32_t trainable);
  /* Number of response tokens appended so far. */
  int64_t (*response_length)(const slime_host_api* host, const slime_generate_output* out);
  int (*set_status)(const slime_host_api* host, slime_generate_output* out, slime_sample_status status);
  /* Optional: the response text. When not set, the host decodes the response tokens. */
  int (*set_response_text)(const slime_host_api* host, slime_generate_output* out, const char* text);
  /* Optional: a JSON object the reward function receives (tool calls made, environment state, ...). */
  int (*set_reward_metadata)(const slime_host_api* host, slime_generate_output* out, const char* json_object);

  /* ---- errors and logging ---- */
  /* The message of a failed entry point: call before returning a non-zero code. */
  void (*set_error)(const slime_host_api* host, const char* message);
  /* What the last failed host call on this host reported ("" when none). */
  const char* (*last_error)(const slime_host_api* host);
  void (*log)(const slime_host_api* host, int32_t level, const char* message);
};

/* The exported version symbol and the entry point. */
typedef uint32_t (*slime_generate_abi_version_fn)(void);
typedef int (*slime_generate_fn_v1)(const slime_host_api* host, const slime_generate_input* input,
                                    slime_generate_output* out);

#define SLIME_GENERATE_ABI_VERSION_SYMBOL "slime_generate_abi_version"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLIME_ROLLOUT_GENERATE_PLUGIN_H_ */
