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
if(NOT DEFINED PYTHON_CANDIDATES)
  set(PYTHON_CANDIDATES ${SOURCE_DIR}/.venv/bin/python /usr/bin/python3)
endif()
set(python "")
foreach(candidate ${PYTHON_CANDIDATES})
  if(EXISTS ${candidate})
    execute_process(COMMAND ${candidate} -c "import ${PYTHON_MODULES}"
                    RESULT_VARIABLE import_result OUTPUT_QUIET ERROR_QUIET)
    if(import_result EQUAL 0)
      set(python ${candidate})
      break()
    endif()
  endif()
endforeach()
if(python STREQUAL "")
  message(FATAL_ERROR "[parity] no Python with ${PYTHON_MODULES} found (tried ${PYTHON_CANDIDATES}): run scripts/setup.sh")
endif()

execute_process(COMMAND ${python} ${SCRIPT} ${OUT_DIR} RESULT_VARIABLE compare_result)
if(NOT compare_result EQUAL 0)
  message(FATAL_ERROR "[parity] Keel and PyTorch disagree (compare_torch.py exited with ${compare_result})")
endif()
