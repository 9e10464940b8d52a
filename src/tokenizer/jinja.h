// A Jinja2 interpreter for Hugging Face chat templates.
// It parses a template once and renders it with the environment transformers uses for chat templates:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]) plus a `tojson`
// filter that is json.dumps(ensure_ascii=False) and the globals raise_exception(msg) and strftime_now(fmt).
// Values follow Python's semantics (str()/repr(), truthiness, int vs float, Undefined); see jinja_value.h.
// Errors (syntax errors when constructing, runtime errors when rendering) throw slime::Error naming the template
// and the line, e.g. "qwen3.jinja line 27: TypeError: argument of type 'NoneType' is not iterable".
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "core/io.h"

namespace slime::jinja {

struct Program;

struct RenderOptions {
  // Clock read by strftime_now(); unset means the machine's local time at the call. Tests pin it.
  std::optional<std::tm> now;
};

class Template {
 public:
  // Parses `source`; `name` (a file name, say) prefixes error messages. Throws slime::Error on syntax errors.
  explicit Template(const std::string& source, std::string name = "template");

  // Renders with the variables of a JSON object. Keys keep the order the JSON type gives them, which `tojson`
  // and dict iteration show: pass nlohmann::ordered_json to keep a document's own key order, as Python does.
  std::string render(const slime::json& context, const RenderOptions& options = {}) const;
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

  const std::string& name() const { return name_; }

 private:
  std::shared_ptr<const Program> program_;
  std::string name_;
};

}  // namespace slime::jinja
