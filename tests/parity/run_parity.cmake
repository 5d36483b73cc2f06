# ctest driver of the parity test: dump Keel's results, then compare them in PyTorch.
# Variables: DUMP (parity_dump), SCRIPT (compare_torch.py), SOURCE_DIR, OUT_DIR; optional
# PYTHON_CANDIDATES (interpreters to try, in order) and PYTHON_MODULES (what the script imports,
# comma-separated; default "torch, numpy").
# Fails (never skips) when no Python with torch is found: a parity test that cannot run has
# not passed.
file(REMOVE_RECURSE ${OUT_DIR})
execute_process(COMMAND ${DUMP} ${OUT_DIR} RESULT_VARIABLE dump_result)
if(NOT dump_result EQUAL 0)
  message(FATAL_ERROR "[parity] parity_dump failed (${dump_result})")
endif()

if(NOT DEFINED PYTHON_MODULES OR PYTHON_MODULES STREQUAL "")
  set(PYTHON_MODULES "torch, numpy")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/find_python.cmake)
keel_find_python(python "${PYTHON_MODULES}" "[parity]")

execute_process(COMMAND ${python} ${SCRIPT} ${OUT_DIR} RESULT_VARIABLE compare_result)
if(NOT compare_result EQUAL 0)
  message(FATAL_ERROR "[parity] Keel and PyTorch disagree (compare_torch.py exited with ${compare_result})")
endif()
