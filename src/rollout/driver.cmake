# The rollout function (generate_rollout.h): over-sampling, rewards, the dynamic sampling filter, partial rollout,
find_package(Threads REQUIRED)
# custom generate plug-ins. Joins the engine, the data module and the rewards.
add_library(slime_rollout_driver STATIC generate_rollout.cpp dynamic_filter.cpp rollout_options.cpp)
target_include_directories(slime_rollout_driver PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(slime_rollout_driver PUBLIC slime_rollout slime_generate_plugin slime_data slime_reward
                      slime_args slime_obs Threads::Threads)

# Test plug-ins, built the way users build theirs: a two-turn generate plug-in with a tool reply in the middle, and a
# dynamic sampling filter.
add_library(rollout_test_generate_plugin MODULE rollout_test_plugins.cpp)
target_include_directories(rollout_test_generate_plugin PRIVATE ${CMAKE_SOURCE_DIR}/src)
set_target_properties(rollout_test_generate_plugin PROPERTIES CXX_VISIBILITY_PRESET hidden)

slime_add_test(NAME rollout_driver_test SOURCES generate_rollout_test.cpp LIBS slime_rollout_driver)
add_dependencies(rollout_driver_test rollout_test_generate_plugin)
target_compile_definitions(rollout_driver_test PRIVATE
  SLIME_ROLLOUT_TEST_PLUGIN="$<TARGET_FILE:rollout_test_generate_plugin>")
