# ctest driver of example_fashion_mnist_onnx: runs examples/check_onnx_accuracy.py on the output of
# example_fashion_mnist_short (OUT_DIR) with a Python that has onnx and onnxruntime. Fails (never
# skips) when there is none: a check that cannot run has not passed.
include(${SOURCE_DIR}/tests/parity/find_python.cmake)
keel_find_python(python "onnx, onnxruntime, numpy" "[onnx]")
execute_process(COMMAND ${python} ${SOURCE_DIR}/examples/check_onnx_accuracy.py ${OUT_DIR} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "[onnx] onnxruntime's test accuracy differs from Keel's (exit ${result})")
endif()
