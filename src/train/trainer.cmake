# slime_train: the distributed optimizer and the training step (joins model, losses, schedule, optimizer).
add_library(slime_train STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/distributed_optimizer.cpp
)
target_include_directories(slime_train PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_train PUBLIC slime_model slime_comm slime_train_optimizer)
