# ctest driver of the numpy interop test: numpy writes files, Keel reads them and writes its own,
# numpy checks both directions. Variables as in run_parity.cmake: DUMP, SCRIPT, SOURCE_DIR,
# OUT_DIR, PYTHON_MODULES. Fails (never skips) when no Python with the modules is found.
file(REMOVE_RECURSE ${OUT_DIR})
file(MAKE_DIRECTORY ${OUT_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/find_python.cmake)
keel_find_python(python "${PYTHON_MODULES}" "[parity]")
foreach(step write dump check)
  if(step STREQUAL "dump")
    execute_process(COMMAND ${DUMP} ${OUT_DIR} RESULT_VARIABLE result)
  else()
    execute_process(COMMAND ${python} ${SCRIPT} ${step} ${OUT_DIR} RESULT_VARIABLE result)
  endif()
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "[parity] the ${step} step failed (${result})")
  endif()
endforeach()
