# --resume continues the main job exactly (ctest example_fashion_mnist_resume):
#   cmake -DTRAINER=<fashion_mnist> -DWORK=<folder> -P fashion_mnist_resume.cmake
# A short run straight through, and the same run stopped after step 40 (mid-epoch 2; with
# --stop-after) then resumed in a new process: the final checkpoints (weights, optimizer, schedule,
# generator, early stopping's best weights) and best.safetensors must have the same bytes, and the
# test accuracy line must be the same.
set(FLAGS --epochs 2 --limit-train 2048 --batch-size 64)
file(REMOVE_RECURSE ${WORK})
function(train out_var)
  execute_process(COMMAND ${TRAINER} ${FLAGS} ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_QUIET)
  message(STATUS "fashion_mnist ${ARGN}:\n${out}")
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "fashion_mnist ${ARGN} failed (${code})")
  endif()
  string(REGEX MATCH "test accuracy: [0-9.]+%" accuracy "${out}")
  set(${out_var} "${accuracy}" PARENT_SCOPE)
endfunction()
train(straight --out ${WORK}/straight)
train(ignored --out ${WORK}/resumed --stop-after 40)
train(resumed --out ${WORK}/resumed --resume ${WORK}/resumed/checkpoint.safetensors)
if(straight STREQUAL "" OR NOT straight STREQUAL resumed)
  message(FATAL_ERROR "the resumed run ends with \"${resumed}\", the straight one with \"${straight}\"")
endif()
foreach(name checkpoint.safetensors best.safetensors)
  file(SHA256 ${WORK}/straight/${name} a)
  file(SHA256 ${WORK}/resumed/${name} b)
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "${name} differs between the straight and the resumed run")
  endif()
endforeach()
message(STATUS "same final checkpoint, best weights and ${straight}")
