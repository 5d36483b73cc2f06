# ctest driver of the safetensors round trip with Python: Keel writes, Python checks and writes,
# Keel reads and checks (see safetensors_interop.cpp). Variables: PROGRAM (safetensors_interop),
# SCRIPT (safetensors_interop.py), SOURCE_DIR, OUT_DIR. Fails (never skips) when no Python with
# safetensors, torch and numpy is found.
file(REMOVE_RECURSE ${OUT_DIR})
file(MAKE_DIRECTORY ${OUT_DIR})
set(modules "safetensors, torch, numpy")
include(${CMAKE_CURRENT_LIST_DIR}/find_python.cmake)
keel_find_python(python "${modules}" "[safetensors_interop]")
# One step: the command, and what its failure means.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "[safetensors_interop] ${what} (${result})")
  endif()
endfunction()
step("Keel's write step failed" ${PROGRAM} write ${OUT_DIR})
step("Python disagrees with Keel's files" ${python} ${SCRIPT} ${OUT_DIR})
step("Keel disagrees with Python's files" ${PROGRAM} read ${OUT_DIR})
