# The keel library: every layer's sources, found by folder (adding an op needs no edit here).
set(KEEL_LAYERS core kernels autograd ops nn optim distributed io)

set(keel_sources)
foreach(layer ${KEEL_LAYERS})
  file(GLOB_RECURSE layer_sources CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/${layer}/*.cpp)
  list(APPEND keel_sources ${layer_sources})
endforeach()
# CPU kernels compiled once per instruction set (files named *.isa.cpp) are added below.
list(FILTER keel_sources EXCLUDE REGEX "\\.isa\\.cpp$")
# CUDA sources: real kernels when KEEL_CUDA, otherwise the stubs that throw a clear error.
list(FILTER keel_sources EXCLUDE REGEX "/kernels/cuda/")
if(KEEL_CUDA)
  file(GLOB_RECURSE cuda_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/cuda/*.cu
       ${PROJECT_SOURCE_DIR}/kernels/cuda/*.cpp)
  list(FILTER cuda_sources EXCLUDE REGEX "/stub/")
else()
  file(GLOB_RECURSE cuda_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/cuda/stub/*.cpp)
endif()
list(APPEND keel_sources ${cuda_sources})

add_library(keel ${keel_sources})
add_library(Keel::keel ALIAS keel)
set_target_properties(keel PROPERTIES OUTPUT_NAME keel VERSION ${PROJECT_VERSION} SOVERSION 0)

# Public headers are <keel/LAYER/...>: in the source tree include/keel/LAYER is a link to the
# layer's folder (so every build directory compiles with the same flags and ccache is shared);
# installed, the headers are copied to include/keel/LAYER.
target_include_directories(keel PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:include>)
target_compile_features(keel PUBLIC cxx_std_20)
target_link_libraries(keel PRIVATE OpenMP::OpenMP_CXX fmt::fmt ZLIB::ZLIB)
target_compile_options(keel PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)

# Instruction-set variants: each *.isa.cpp is compiled once per entry, in its own namespace
# (keel::cpu::<isa>), and kernels/cpu/dispatch.cpp picks one at run time from CPUID.
set(KEEL_CPU_ISAS "baseline\;-march=x86-64-v2" "avx2\;-march=x86-64-v3" "avx512\;-march=x86-64-v4")
file(GLOB_RECURSE isa_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/cpu/*.isa.cpp)
# Random draws must match CUDA's (and the shared formula) bit for bit: no fused multiply-adds.
set_source_files_properties(${PROJECT_SOURCE_DIR}/kernels/cpu/random.isa.cpp PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
foreach(isa_entry ${KEEL_CPU_ISAS})
  list(GET isa_entry 0 isa_name)
  list(GET isa_entry 1 isa_flag)
  set(isa_target keel_cpu_${isa_name})
  add_library(${isa_target} OBJECT ${isa_sources})
  target_include_directories(${isa_target} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(${isa_target} PRIVATE KEEL_CPU_ISA=${isa_name})
  target_compile_options(${isa_target} PRIVATE ${isa_flag} -mtune=generic -Wall -Wextra
                         -Wno-unused-parameter)
  target_link_libraries(${isa_target} PRIVATE OpenMP::OpenMP_CXX fmt::fmt)
  target_sources(keel PRIVATE $<TARGET_OBJECTS:${isa_target}>)
endforeach()

if(KEEL_CUDA)
  target_compile_definitions(keel PUBLIC KEEL_WITH_CUDA=1)
  target_link_libraries(keel PRIVATE CUDA::cudart CUDA::cublas)  # cuBLAS: kernels/cuda/gemm.cpp
  set_target_properties(keel PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
endif()

# Backends of later layers (distributed, convolution). The options find and link their
# libraries now, so that a configuration error shows at once; code that uses them defines
# KEEL_WITH_MPI / KEEL_WITH_NCCL / KEEL_WITH_ONEDNN. With all of them off Keel builds CPU-only
# (plus CUDA when KEEL_CUDA), and the missing backends throw a clear keel::Error when called.
if(KEEL_MPI)
  find_package(MPI REQUIRED COMPONENTS CXX)
  target_link_libraries(keel PRIVATE MPI::MPI_CXX)
  target_compile_definitions(keel PRIVATE KEEL_WITH_MPI=1)
endif()
if(KEEL_NCCL)
  if(NOT KEEL_CUDA)
    message(FATAL_ERROR "KEEL_NCCL needs KEEL_CUDA=ON")
  endif()
  find_library(KEEL_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} REQUIRED)
  find_path(KEEL_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} REQUIRED)
  target_link_libraries(keel PRIVATE ${KEEL_NCCL_LIBRARY})
  target_include_directories(keel PRIVATE ${KEEL_NCCL_INCLUDE_DIR})
  target_compile_definitions(keel PRIVATE KEEL_WITH_NCCL=1)
endif()
if(KEEL_ONEDNN)
  # Found directly: Debian's dnnl-config.cmake demands OpenCL, which the CPU engine does not use.
  find_library(KEEL_DNNL_LIBRARY dnnl REQUIRED)
  find_path(KEEL_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
  target_link_libraries(keel PRIVATE ${KEEL_DNNL_LIBRARY})
  target_include_directories(keel PRIVATE ${KEEL_DNNL_INCLUDE_DIR})
  target_compile_definitions(keel PRIVATE KEEL_WITH_ONEDNN=1)
endif()
message(STATUS "Keel backends: CUDA=${KEEL_CUDA} MPI=${KEEL_MPI} NCCL=${KEEL_NCCL} oneDNN=${KEEL_ONEDNN}")

include(cmake/KeelInstall.cmake)

if(KEEL_BUILD_TESTS)
  enable_testing()
  add_subdirectory(tests)
endif()
if(KEEL_BUILD_BENCH)
  add_subdirectory(bench)
endif()
if(KEEL_BUILD_EXAMPLES)
  add_subdirectory(examples)
endif()
