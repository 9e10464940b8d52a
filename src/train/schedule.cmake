# slime_train_schedule: the data-parallel micro-batch schedule of a rollout (slime's build_dp_schedule):
# steps of global_batch_size rollouts, micro-batch packing, Karmarkar-Karp balancing across DP ranks.
add_library(slime_train_schedule STATIC
  dp_schedule.cpp
)
target_link_libraries(slime_train_schedule PUBLIC slime_core)

slime_add_test(NAME dp_schedule_test SOURCES dp_schedule_test.cpp LIBS slime_train_schedule)
