# slime_train: the distributed optimizer and the training step (joins model, losses, schedule, optimizer).
add_library(slime_train STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/distributed_optimizer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/gpu_actor.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/trainer.cpp
)
target_include_directories(slime_train PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_train PUBLIC slime_model slime_comm slime_checkpoint slime_args slime_train_optimizer
                      slime_train_loss slime_train_schedule slime_obs)
# --backend cuda: the actor's forward, backward and optimizer on the GPU (gpu_actor.cpp).
if(SLIME_HAVE_CUDA)
  target_link_libraries(slime_train PUBLIC slime_model_cuda slime_train_cuda)
  target_compile_definitions(slime_train PRIVATE SLIME_HAVE_CUDA)
endif()

slime_add_test(NAME trainer_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/trainer_test.cpp LIBS slime_train NP 2 TIMEOUT 600)
slime_add_test(NAME trainer_sanity_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/trainer_sanity_test.cpp LIBS slime_train)
slime_add_test(NAME trainer_options_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/trainer_options_test.cpp LIBS slime_train)
if(SLIME_HAVE_CUDA)
  slime_add_test(NAME trainer_cuda_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/trainer_cuda_test.cpp LIBS slime_train
                 slime_cuda NP 2 TIMEOUT 600 LABELS gpu)
endif()
