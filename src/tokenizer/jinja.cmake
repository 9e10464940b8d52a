# Jinja interpreter + chat templates: sources and tests (owned by its author)
add_library(slime_jinja STATIC
  jinja_text.cpp
  jinja_value.cpp
  jinja_lexer.cpp
  jinja_parser.cpp
  jinja_names.cpp
  jinja_eval.cpp
  jinja_methods.cpp
  jinja_format.cpp
  jinja_filters.cpp
  chat_template.cpp
)
target_link_libraries(slime_jinja PUBLIC slime_core PRIVATE PkgConfig::UTF8PROC)

slime_add_test(NAME jinja_test SOURCES jinja_test.cpp LIBS slime_jinja)
slime_add_test(NAME chat_template_test SOURCES chat_template_test.cpp LIBS slime_jinja)
