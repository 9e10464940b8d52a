# RL losses with analytic gradients and the advantage estimators (owned by the loss/advantages author).
add_library(slime_train_loss STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/loss.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/advantages.cpp
)
target_link_libraries(slime_train_loss PUBLIC slime_core MPI::MPI_CXX)

slime_add_test(NAME loss_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/loss_test.cpp LIBS slime_train_loss)
slime_add_test(NAME advantages_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/advantages_test.cpp LIBS slime_train_loss)
slime_add_test(NAME whiten_mpi_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/whiten_mpi_test.cpp LIBS slime_train_loss
               NP 2)
