# slime_checkpoint: HDF5 training checkpoints (Megatron names, global datasets, collective parallel I/O).
add_library(slime_checkpoint STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/h5.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint.cpp
)
target_include_directories(slime_checkpoint PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_checkpoint PUBLIC slime_model slime_comm slime_hdf5)

slime_add_test(NAME checkpoint_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint_test.cpp
               LIBS slime_checkpoint slime_train NP 2)
