// Example custom generate plug-in: a multi-turn calculator tool loop (see README.md in this folder).
//
// The model generates until it closes a tool call <calculator>EXPR</calculator> (the engine stops on the string
// "</calculator>") or ends. The plug-in evaluates EXPR exactly over the rationals (+ - * / parentheses, integers
// and decimals), appends <result>VALUE</result> (or <result>error: ...</result>) as non-trainable tokens, and lets
// the model continue, for at most metadata.max_turns model turns (default 4), within max_new_tokens overall.
//
// It depends only on src/rollout/generate_plugin.h and nlohmann/json (header-only): nothing of slime-hpc is linked.
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rollout/generate_plugin.h"

namespace {

// ---- exact rational arithmetic ----------------------------------------------------------------------------------

// A reduced fraction with a positive denominator; every operation checks that the result fits in int64.
struct Rational {
  int64_t numerator = 0;
  int64_t denominator = 1;
};

struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

__int128 gcd128(__int128 a, __int128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    const __int128 r = a % b;
    a = b;
    b = r;
  }
  return a;
}

Rational make_rational(__int128 numerator, __int128 denominator) {
  if (denominator == 0) throw ToolError("division by zero");
  if (denominator < 0) {
    numerator = -numerator;
    denominator = -denominator;
  }
  const __int128 g = gcd128(numerator, denominator);
  if (g > 1) {
    numerator /= g;
    denominator /= g;
  }
  const __int128 limit = INT64_MAX;
  if (numerator > limit || numerator < -limit || denominator > limit) throw ToolError("number too large");
  return {static_cast<int64_t>(numerator), static_cast<int64_t>(denominator)};
}

Rational add(Rational a, Rational b) {
  return make_rational(static_cast<__int128>(a.numerator) * b.denominator +
                           static_cast<__int128>(b.numerator) * a.denominator,
                       static_cast<__int128>(a.denominator) * b.denominator);
}
Rational negate(Rational a) { return {-a.numerator, a.denominator}; }
Rational multiply(Rational a, Rational b) {
  // Cross-reduce first so that products of reduced fractions overflow only when the result does.
  const __int128 g1 = gcd128(a.numerator, b.denominator), g2 = gcd128(b.numerator, a.denominator);
  const __int128 an = g1 > 1 ? a.numerator / g1 : a.numerator, bd = g1 > 1 ? b.denominator / g1 : b.denominator;
  const __int128 bn = g2 > 1 ? b.numerator / g2 : b.numerator, ad = g2 > 1 ? a.denominator / g2 : a.denominator;
  return make_rational(an * bn, ad * bd);
}
Rational divide(Rational a, Rational b) {
  if (b.numerator == 0) throw ToolError("division by zero");
  return multiply(a, make_rational(b.denominator, b.numerator));
}

std::string to_string(Rational r) {
  if (r.denominator == 1) return std::to_string(r.numerator);
  return std::to_string(r.numerator) + "/" + std::to_string(r.denominator);
}

// ---- the expression parser (recursive descent) ------------------------------------------------------------------
//   expression := term (('+' | '-') term)*
//   term       := factor (('*' | '/') factor)*
//   factor     := ('+' | '-') factor | number | '(' expression ')'
//   number     := digits ['.' digits]

class ExpressionParser {
 public:
  explicit ExpressionParser(const std::string& text) : text_(text) {}

  Rational parse() {
    skip_spaces();
    if (at_end()) throw ToolError("empty expression");
    const Rational value = expression();
    skip_spaces();
    if (!at_end()) throw ToolError("unexpected '" + std::string(1, text_[pos_]) + "' at position " +
                                   std::to_string(pos_));
    return value;
  }

 private:
  static constexpr int kMaxDepth = 100;

  bool at_end() const { return pos_ >= text_.size(); }
  void skip_spaces() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool accept(char c) {
    skip_spaces();
    if (!at_end() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Rational expression() {
    Rational value = term();
    for (;;) {
      if (accept('+')) value = add(value, term());
      else if (accept('-')) value = add(value, negate(term()));
      else return value;
    }
  }
  Rational term() {
    Rational value = factor();
    for (;;) {
      if (accept('*')) value = multiply(value, factor());
      else if (accept('/')) value = divide(value, factor());
      else return value;
    }
  }
  Rational factor() {
    if (++depth_ > kMaxDepth) throw ToolError("expression nested too deeply");
    Rational value;
    if (accept('-')) {
      value = negate(factor());
    } else if (accept('+')) {
      value = factor();
    } else if (accept('(')) {
      value = expression();
      if (!accept(')')) throw ToolError("missing ')' at position " + std::to_string(pos_));
    } else {
      value = number();
    }
    --depth_;
    return value;
  }
  Rational number() {
    skip_spaces();
    const size_t start = pos_;
    __int128 numerator = 0, denominator = 1;
    bool any_digit = false, in_fraction = false;
    const __int128 limit = INT64_MAX;
    for (; !at_end(); ++pos_) {
      const char c = text_[pos_];
      if (c == '.' && !in_fraction) {
        in_fraction = true;
        continue;
      }
      if (c < '0' || c > '9') break;
      any_digit = true;
      numerator = numerator * 10 + (c - '0');
      if (in_fraction) denominator *= 10;
      if (numerator > limit || denominator > limit) throw ToolError("number too large");
    }
    if (!any_digit) {
      if (at_end()) throw ToolError("expected a number at the end");
      throw ToolError("expected a number at position " + std::to_string(start) + ", found '" +
                      std::string(1, text_[start]) + "'");
    }
    return make_rational(numerator, denominator);
  }

  const std::string& text_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// ---- host calls -------------------------------------------------------------------------------------------------

const char* const kCallOpen = "<calculator>";
const char* const kCallClose = "</calculator>";

// Host failures become exceptions inside the plug-in; the entry point turns them into set_error + a code.
struct HostFailure : std::runtime_error {
  HostFailure(const std::string& what, int code) : std::runtime_error(what), code(code) {}
  int code;
};

void check(const slime_host_api* host, int rc, const char* call) {
  if (rc != SLIME_OK) throw HostFailure(std::string(call) + ": " + host->last_error(host), rc);
}

// One engine call's result, released on scope exit.
struct Generation {
  const slime_host_api* host;
  slime_generation result{};
  explicit Generation(const slime_host_api* h) : host(h) {}
  ~Generation() { host->free_generation(host, &result); }
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;
};

std::string decode(const slime_host_api* host, const int64_t* ids, int64_t n) {
  slime_text text{};
  check(host, host->decode(host, ids, n, 0, &text), "decode");
  std::string copy(text.text, static_cast<size_t>(text.length));
  host->free_text(host, &text);
  return copy;
}

std::vector<int64_t> encode(const slime_host_api* host, const std::string& text) {
  slime_token_ids ids{};
  check(host, host->encode(host, text.c_str(), &ids), "encode");
  std::vector<int64_t> copy(ids.ids, ids.ids + ids.num_ids);
  host->free_token_ids(host, &ids);
  return copy;
}

// The tool's answer to the call that ends `turn_text` (the engine stopped right after the first "</calculator>").
std::string tool_result(const std::string& turn_text, bool* is_error) {
  *is_error = true;
  const size_t close = turn_text.find(kCallClose);
  if (close == std::string::npos) return "<result>error: no </calculator> in the tool call</result>";
  const size_t open = turn_text.rfind(kCallOpen, close);
  if (open == std::string::npos) return "<result>error: </calculator> without <calculator></result>";
  const size_t start = open + std::string(kCallOpen).size();
  try {
    const Rational value = ExpressionParser(turn_text.substr(start, close - start)).parse();
    *is_error = false;
    return "<result>" + to_string(value) + "</result>";
  } catch (const ToolError& e) {
    return std::string("<result>error: ") + e.what() + "</result>";
  }
}

int64_t max_turns_of(const char* metadata_json) {
  const nlohmann::json metadata = nlohmann::json::parse(metadata_json);
  if (!metadata.is_object() || !metadata.contains("max_turns")) return 4;
  const nlohmann::json& value = metadata["max_turns"];
  if (!value.is_number_integer() || value.get<int64_t>() < 1)
    throw std::runtime_error("metadata field 'max_turns': expected an integer >= 1, got " + value.dump());
  return value.get<int64_t>();
}

int run_tool_loop(const slime_host_api* host, const slime_generate_input* input, slime_generate_output* out) {
  const int64_t max_turns = max_turns_of(input->metadata_json);
  const int64_t budget = input->sampling_params.max_new_tokens;

  // The rollout's stop strings plus the end of a tool call.
  std::vector<const char*> stops(input->sampling_params.stop,
                                 input->sampling_params.stop + input->sampling_params.num_stop);
  stops.push_back(kCallClose);
  slime_sampling_params params = input->sampling_params;
  params.stop = stops.data();
  params.num_stop = static_cast<int64_t>(stops.size());

  std::vector<int64_t> context(input->prompt_tokens, input->prompt_tokens + input->num_prompt_tokens);
  slime_sample_status status = SLIME_STATUS_TRUNCATED;  // every exit of the loop below sets it
  int64_t turns = 0, tool_calls = 0, tool_errors = 0;
  for (int64_t turn = 0; turn < max_turns; ++turn) {
    const int64_t remaining = budget - host->response_length(host, out);
    if (remaining <= 0) {
      status = SLIME_STATUS_TRUNCATED;
      break;
    }
    params.max_new_tokens = remaining;
    // The engine draws a call's tokens from the seed's stream by position in that call's output: a distinct
    // stream per turn keeps the turns' draws independent (and the sample reproducible from its seed).
    params.seed = input->sampling_params.seed ^ (static_cast<uint64_t>(turn) * 0x9E3779B97F4A7C15ull);
    Generation generation(host);
    check(host, host->generate(host, context.data(), static_cast<int64_t>(context.size()), &params,
                               &generation.result), "generate");
    const slime_generation& g = generation.result;
    ++turns;
    check(host, host->append_response(host, out, g.tokens, g.logprobs, g.num_tokens, 1), "append_response");
    context.insert(context.end(), g.tokens, g.tokens + g.num_tokens);

    if (g.finish_reason == SLIME_FINISH_ABORT) {
      status = SLIME_STATUS_ABORTED;
      break;
    }
    if (g.finish_reason == SLIME_FINISH_LENGTH) {
      status = SLIME_STATUS_TRUNCATED;
      break;
    }
    if (std::string(g.matched_stop) != kCallClose) {  // end of sequence or one of the rollout's stops
      status = SLIME_STATUS_COMPLETED;
      break;
    }
    if (turn + 1 == max_turns) {  // a tool call no model turn is left to read: the answer was cut
      status = SLIME_STATUS_TRUNCATED;
      break;
    }
    bool is_error = false;
    const std::string result = tool_result(decode(host, g.tokens, g.num_tokens), &is_error);
    ++tool_calls;
    tool_errors += is_error ? 1 : 0;
    std::vector<int64_t> result_tokens = encode(host, result);
    const int64_t room = budget - host->response_length(host, out);
    const bool cut = static_cast<int64_t>(result_tokens.size()) > room;
    if (cut) result_tokens.resize(static_cast<size_t>(room));
    check(host, host->append_response(host, out, result_tokens.data(), nullptr,
                                      static_cast<int64_t>(result_tokens.size()), 0), "append_response");
    context.insert(context.end(), result_tokens.begin(), result_tokens.end());
    if (cut) {
      status = SLIME_STATUS_TRUNCATED;
      break;
    }
  }
  check(host, host->set_status(host, out, status), "set_status");
  const nlohmann::json reward_metadata = {{"turns", turns}, {"tool_calls", tool_calls}, {"tool_errors", tool_errors}};
  check(host, host->set_reward_metadata(host, out, reward_metadata.dump().c_str()), "set_reward_metadata");
  return SLIME_OK;
}

}  // namespace

SLIME_PLUGIN_EXPORT uint32_t slime_generate_abi_version(void) { return SLIME_GENERATE_ABI_VERSION; }

SLIME_PLUGIN_EXPORT int slime_calculator_generate(const slime_host_api* host, const slime_generate_input* input,
                                                  slime_generate_output* out) {
  // No exception may leave the entry point.
  try {
    return run_tool_loop(host, input, out);
  } catch (const HostFailure& e) {
    host->set_error(host, (std::string("calculator: ") + e.what()).c_str());
    return e.code;
  } catch (const std::exception& e) {
    host->set_error(host, (std::string("calculator: ") + e.what()).c_str());
    return SLIME_ERR_PLUGIN;
  } catch (...) {
    host->set_error(host, "calculator: unknown exception");
    return SLIME_ERR_PLUGIN;
  }
}
