# TensorBoard event files from slime_obs, checked by an independent standard-library Python reader
# (read_tfevents.py: its own bitwise CRC-32C and protobuf decoding): every tag / step / value of a known sample,
# and a flipped byte or a truncation must be detected.
add_executable(tb_write_sample ${CMAKE_CURRENT_LIST_DIR}/tb_write_sample.cpp)
target_link_libraries(tb_write_sample PRIVATE slime_obs)
set_target_properties(tb_write_sample PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/regression)
add_test(NAME tensorboard_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tensorboard_test.sh ${CMAKE_BINARY_DIR}
                                       ${CMAKE_SOURCE_DIR})

# slime-report on a GRPO run's metrics.jsonl (testdata/grpo_metrics.jsonl, with a redone step): every PNG is valid,
# summary.md has the hand-worked numbers, bad inputs fail with a message. Skipped (77) without gnuplot.
add_test(NAME slime_report_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/report_test.sh ${CMAKE_BINARY_DIR}
                                        ${CMAKE_SOURCE_DIR})
set_tests_properties(slime_report_test PROPERTIES SKIP_RETURN_CODE 77)
