# slime's SFT rollout function and its multi-turn loss masks (--loss-mask-type qwen, qwen3); docs/sft.md.
add_library(slime_sft STATIC ${CMAKE_CURRENT_SOURCE_DIR}/loss_mask.cpp ${CMAKE_CURRENT_SOURCE_DIR}/sft_rollout.cpp)
target_include_directories(slime_sft PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_sft PUBLIC slime_data slime_tokenizer slime_jinja)

slime_add_test(NAME sft_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sft_test.cpp LIBS slime_sft)
