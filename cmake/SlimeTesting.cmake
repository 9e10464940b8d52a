# slime_add_test(NAME name SOURCES a.cpp ... LIBS libs... [NP k] [LABELS l...])
#   Builds one Catch2 executable (linked with the shared test main) and registers it with ctest.
#   NP k > 0 runs it under `mpirun -np k`; label `gpu` keeps it out of `make test` (run by `make gpu-test`).
set(SLIME_MPIRUN_FLAGS --allow-run-as-root --oversubscribe --bind-to none
    --mca btl_vader_single_copy_mechanism none)
function(slime_add_test)
  cmake_parse_arguments(T "" "NAME;NP;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  if(T_NP)
    target_link_libraries(${T_NAME} PRIVATE slime_test_main_mpi ${T_LIBS})
  else()
    target_link_libraries(${T_NAME} PRIVATE slime_test_main ${T_LIBS})
  endif()
  if(T_NP)
    add_test(NAME ${T_NAME} COMMAND ${MPIEXEC_EXECUTABLE} ${SLIME_MPIRUN_FLAGS} -np ${T_NP}
             $<TARGET_FILE:${T_NAME}> --use-colour no)
    set(T_LABELS ${T_LABELS} mpi)
  else()
    add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}"
                       ENVIRONMENT "OPENBLAS_NUM_THREADS=1;SLIME_SOURCE_DIR=${CMAKE_SOURCE_DIR};SLIME_BUILD_DIR=${CMAKE_BINARY_DIR}")
  if(T_TIMEOUT)
    set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT})
  endif()
endfunction()
