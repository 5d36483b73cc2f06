# Bit-exact resume across processes (ctest io_checkpoint_resume):
#   cmake -DHELPER=<checkpoint_helper> -DWORK=<folder> -P checkpoint_resume.cmake
# N steps straight vs N/2 steps, checkpoint, a NEW process loads it and trains the other N/2: the
# final weights, optimizer state and metadata must have the same bytes. Then the same resume with
# the generator left unrestored must differ (the comparison can fail).
set(N 20)  # 6 batches per epoch: the checkpoint at step 10 is in the middle of epoch 1
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
function(run expect)
  execute_process(COMMAND ${HELPER} ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "checkpoint_helper ${ARGN}: ${out}${err}")
  if(expect STREQUAL "ok" AND NOT code EQUAL 0)
    message(FATAL_ERROR "checkpoint_helper ${ARGN} failed (${code})")
  endif()
  if(expect STREQUAL "differ" AND NOT code EQUAL 1)
    message(FATAL_ERROR "checkpoint_helper ${ARGN} should have found differences (exit ${code})")
  endif()
endfunction()
run(ok straight ${N} ${WORK}/straight.safetensors)
run(ok first ${N} ${WORK}/half.safetensors)
run(ok resume ${N} ${WORK}/half.safetensors ${WORK}/resumed.safetensors)
run(ok compare ${WORK}/straight.safetensors ${WORK}/resumed.safetensors)
run(ok resume ${N} ${WORK}/half.safetensors ${WORK}/no_rng.safetensors --skip-rng)
run(differ compare ${WORK}/straight.safetensors ${WORK}/no_rng.safetensors)
