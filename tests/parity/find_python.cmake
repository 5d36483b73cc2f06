# Included by the Python-checked test drivers (cmake -P scripts): finds an interpreter that can
# import what the check needs. Candidates: SOURCE_DIR/.venv/bin/python (scripts/setup.sh makes it),
# then /usr/bin/python3, unless PYTHON_CANDIDATES is set. Fails (never skips) when none can: a
# check that cannot run has not passed.
#   keel_find_python(<result variable> "<modules, comma-separated>" <tag for the error>)
function(keel_find_python out_var modules tag)
  set(candidates ${PYTHON_CANDIDATES})
  if(NOT candidates)
    set(candidates ${SOURCE_DIR}/.venv/bin/python /usr/bin/python3)
  endif()
  foreach(candidate ${candidates})
    if(EXISTS ${candidate})
      execute_process(COMMAND ${candidate} -c "import ${modules}" RESULT_VARIABLE import_result
                      OUTPUT_QUIET ERROR_QUIET)
      if(import_result EQUAL 0)
        set(${out_var} ${candidate} PARENT_SCOPE)
        return()
      endif()
    endif()
  endforeach()
  message(FATAL_ERROR "${tag} no Python with ${modules} found (tried ${candidates}): run scripts/setup.sh")
endfunction()
