# slime_args: the option table of slime-train, command-line and YAML parsing, validation, help and JSON export.
add_library(slime_args STATIC
  args.cpp
  args_options.cpp
  args_validate.cpp
)
target_link_libraries(slime_args PUBLIC slime_core PRIVATE yaml-cpp)

slime_add_test(NAME args_test SOURCES args_test.cpp LIBS slime_args)
