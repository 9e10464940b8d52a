# slime_train_optimizer: AdamW and gradient-clipping math on flat fp32 spans (adamw.*) and Megatron's
# learning-rate / weight-decay schedule (lr_scheduler.*). The distributed optimizer is built on top of these.
add_library(slime_train_optimizer STATIC adamw.cpp lr_scheduler.cpp)
target_link_libraries(slime_train_optimizer PUBLIC slime_core)
# No fused multiply-add contraction: the AdamW update is rounded operation by operation like the fused kernel's
# fp32 code, so a GPU kernel that also disables contraction (__fmul_rn/__fadd_rn) can match it bit for bit.
# No errno from sqrt: lets the AdamW loop use packed sqrt/div (IEEE-exact, same bits as scalar; 4x faster).
target_compile_options(slime_train_optimizer PRIVATE -ffp-contract=off -fno-math-errno)

slime_add_test(NAME optimizer_test SOURCES optimizer_test.cpp LIBS slime_train_optimizer)

# The distributed optimizer on the GPU over a registry held there (the CUDA backend's optimizer).
if(SLIME_HAVE_CUDA)
  add_library(slime_train_cuda STATIC cuda_optimizer.cpp)
  target_link_libraries(slime_train_cuda PUBLIC slime_train_optimizer slime_model slime_comm_cuda slime_cuda)
endif()
