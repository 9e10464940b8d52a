// The option table behind args.h: one OptionSpec per command-line option, binding its flag to a field of
// Args through a member pointer. Internal to slime_args (args.cpp, args_options.cpp, args_validate.cpp).
// The type of the bound field decides how values are read; `style` only says how a bool-like flag behaves.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/args.h"

namespace slime::args_detail {

using FieldRef = std::variant<bool Args::*, std::optional<bool> Args::*, int64_t Args::*,
                              std::optional<int64_t> Args::*, double Args::*, std::optional<double> Args::*,
                              std::string Args::*, std::optional<std::string> Args::*,
                              std::vector<std::string> Args::*, std::vector<int64_t> Args::*>;

enum class Style {
  Value,       // takes a value (lists take one or more: values until the next --option)
  StoreTrue,   // bool flag: present -> true
  StoreFalse,  // slime's "--disable-x" flags: present -> the bound field becomes false
  BoolPair,    // optional<bool> with a --no- twin: --x -> true, --no-x -> false (argparse BooleanOptionalAction)
  ZeroOrMore,  // list option that may be given with no value (argparse nargs='*')
  Append,      // repeatable single-value option, each occurrence appends (argparse action='append')
  JsonObject,  // string option whose value must be a JSON object
};

struct OptionSpec {
  std::string group;        // slime's / Megatron's group name
  std::string flag;         // "--rollout-batch-size"
  std::string field;        // "rollout_batch_size": the Args field, JSON key and summary name
  FieldRef ref;
  Style style = Style::Value;
  std::string help;
  std::vector<std::string> choices;  // empty = any value
  std::string default_note;          // shown instead of the default value when not empty ("required", ...)
};

// Every option, in help order (group by group). Built once.
const std::vector<OptionSpec>& option_table();

// The groups in help order.
const std::vector<std::string>& option_groups();

// Flags that slime or Megatron have but slime-hpc deliberately leaves out, with the reason shown in the
// "unknown option" error. `prefix` ends with '-' for a family (e.g. "--wandb-").
struct OmittedOption {
  std::string prefix;
  std::string reason;
};
const std::vector<OmittedOption>& omitted_options();

}  // namespace slime::args_detail
