# TensorBoard event files from slime_obs, checked by an independent standard-library Python reader
# (read_tfevents.py: its own bitwise CRC-32C and protobuf decoding): every tag / step / value of a known sample,
# and a flipped byte or a truncation must be detected.
add_executable(tb_write_sample ${CMAKE_CURRENT_LIST_DIR}/tb_write_sample.cpp)
target_link_libraries(tb_write_sample PRIVATE slime_obs)
set_target_properties(tb_write_sample PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/regression)
add_test(NAME tensorboard_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tensorboard_test.sh ${CMAKE_BINARY_DIR}
                                       ${CMAKE_SOURCE_DIR})
