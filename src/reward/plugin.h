/* The C ABI of reward plug-ins, loaded with --custom-rm-path path/to/libmyreward.so:symbol.
 *
 * A plug-in is a shared library exporting, under any name, a function of type slime_reward_v1_fn:
 *
 *   extern "C" int my_reward(const char* prompt, const char* response, const char* label_json,
 *                            const char* metadata_json, double* reward, char* error, size_t error_size);
 *
 *   prompt, response  UTF-8 text, NUL-terminated.
 *   label_json        the sample's label as JSON text ("\"42\"", "42", "{\"target\": 24}", "null").
 *   metadata_json     the sample's metadata as JSON text ("{}" when there is none).
 *   reward            where to store the reward on success (a finite number).
 *   error, error_size a buffer for a NUL-terminated message on failure (truncate to error_size - 1 bytes).
 *   returns           0 on success; any other value is a failure, reported with the message and the code.
 *
 * The pointers are valid only during the call. slime-hpc may call the function from several threads at once;
 * a plug-in with state must protect it. Build with e.g. `g++ -shared -fPIC -O2 my_reward.cpp -o libmyreward.so`
 * (inputs/plugins/reward_example/ is a complete example). This header is C and C++ compatible.
 */
#ifndef SLIME_REWARD_PLUGIN_H
#define SLIME_REWARD_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLIME_REWARD_PLUGIN_ABI_VERSION 1

typedef int (*slime_reward_v1_fn)(const char* prompt, const char* response, const char* label_json,
                                  const char* metadata_json, double* reward, char* error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* SLIME_REWARD_PLUGIN_H */
