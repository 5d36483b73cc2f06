# ctest driver of example_fashion_mnist_onnx: runs examples/check_onnx_accuracy.py on the output of
# example_fashion_mnist_short (OUT_DIR) with a Python that has onnx and onnxruntime. Fails (never
# skips) when there is none: a check that cannot run has not passed.
set(python "")
foreach(candidate ${SOURCE_DIR}/.venv/bin/python /usr/bin/python3)
  if(EXISTS ${candidate})
    execute_process(COMMAND ${candidate} -c "import onnx, onnxruntime, numpy" RESULT_VARIABLE import_result
                    OUTPUT_QUIET ERROR_QUIET)
    if(import_result EQUAL 0)
      set(python ${candidate})
      break()
    endif()
  endif()
endforeach()
if(python STREQUAL "")
  message(FATAL_ERROR "[onnx] no Python with onnx and onnxruntime found: run scripts/setup.sh")
endif()
execute_process(COMMAND ${python} ${SOURCE_DIR}/examples/check_onnx_accuracy.py ${OUT_DIR} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "[onnx] onnxruntime's test accuracy differs from Keel's (exit ${result})")
endif()
