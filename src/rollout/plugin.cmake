# Custom generate plug-ins (--custom-generate-function-path lib.so:symbol): the host library, the example calculator
# plug-in (inputs/plugins/calculator), tiny C test plug-ins and the test.

# The loader and the host side of the C ABI (generate_plugin.h).
add_library(slime_generate_plugin STATIC generate_plugin_host.cpp)
target_include_directories(slime_generate_plugin PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_generate_plugin PUBLIC slime_rollout)

# The example plug-in: <build>/plugins/libslime_calculator_plugin.so. It links nothing of slime-hpc: only the ABI
# header and nlohmann/json (header-only).
add_library(slime_calculator_plugin MODULE ${CMAKE_SOURCE_DIR}/inputs/plugins/calculator/calculator_tool.cpp)
target_include_directories(slime_calculator_plugin PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_calculator_plugin PRIVATE nlohmann_json::nlohmann_json)
set_target_properties(slime_calculator_plugin PROPERTIES
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/plugins)

# Test plug-ins in C: one right, one reporting another ABI version, one without the version symbol.
foreach(variant ok wrong_abi no_version)
  add_library(slime_test_plugin_${variant} MODULE generate_plugin_test_plugins.c)
  target_include_directories(slime_test_plugin_${variant} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  set_target_properties(slime_test_plugin_${variant} PROPERTIES C_VISIBILITY_PRESET hidden)
  target_compile_options(slime_test_plugin_${variant} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endforeach()
target_compile_definitions(slime_test_plugin_wrong_abi PRIVATE TEST_PLUGIN_ABI_VERSION=999u)
target_compile_definitions(slime_test_plugin_no_version PRIVATE TEST_PLUGIN_NO_VERSION_SYMBOL)

slime_add_test(NAME generate_plugin_test SOURCES generate_plugin_test.cpp LIBS slime_generate_plugin)
add_dependencies(generate_plugin_test slime_calculator_plugin slime_test_plugin_ok slime_test_plugin_wrong_abi
                 slime_test_plugin_no_version)
target_compile_definitions(generate_plugin_test PRIVATE
  SLIME_CALCULATOR_PLUGIN="$<TARGET_FILE:slime_calculator_plugin>"
  SLIME_TEST_PLUGIN="$<TARGET_FILE:slime_test_plugin_ok>"
  SLIME_TEST_PLUGIN_WRONG_ABI="$<TARGET_FILE:slime_test_plugin_wrong_abi>"
  SLIME_TEST_PLUGIN_NO_VERSION="$<TARGET_FILE:slime_test_plugin_no_version>")
