# BPE tokenizer: sources and tests (owned by its author)
add_library(slime_tokenizer STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/added_vocabulary.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/bpe_model.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/normalizer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/pcre_regex.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/pre_tokenizer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/unicode_text.cpp
)
target_include_directories(slime_tokenizer PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_tokenizer PUBLIC slime_core PRIVATE PkgConfig::PCRE2 PkgConfig::UTF8PROC)

find_package(Threads REQUIRED)
slime_add_test(NAME tokenizer_test SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_unit_test.cpp
  LIBS slime_tokenizer PkgConfig::UTF8PROC Threads::Threads)

# Benchmark (regression/tokenizer/bench.sh): not run by ctest.
add_executable(tokenizer_bench ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_bench.cpp)
target_link_libraries(tokenizer_bench PRIVATE slime_tokenizer)
