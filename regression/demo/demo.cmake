# The main job (make run = slurm/run_demo.sh) as a regression test: SFT then GRPO under mpirun, asserting the
# evaluation gain and the time limit. Serial: it times itself, so it must not share the cores with other tests.
add_test(NAME demo_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/demo_test.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
set_tests_properties(demo_test PROPERTIES LABELS mpi RUN_SERIAL TRUE TIMEOUT 1800)
