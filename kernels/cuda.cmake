# CUDA kernels (included from kernels/CMakeLists.txt when TERN_HAVE_CUDA): the tern::kernels_cuda
# library (cuda_codec.h) and the standalone checker/benchmark tern-gpu-check.
#
# Exactness: device code must round exactly like the CPU scalar reference, so no fast math, no FMA
# contraction (-fmad=false), IEEE division and square root, no flush-to-zero. The kernels also
# use explicit __fadd_rn/__fmul_rn/__fdiv_rn/__fsqrt_rn.
# Only the runtime API is used, linked statically (CUDA::cudart_static) as everywhere in tern, so
# that a process never holds two CUDA runtimes (ternd links these kernels and opens CUDA IPC
# handles itself); never libcuda, so the binaries start on machines without a driver and report
# "no GPU" themselves.

set(TERN_CUDA_EXACT_FLAGS -fmad=false -prec-div=true -prec-sqrt=true -ftz=false)
# nvcc's front end flags `status_ = ...` (the assignment operator of a [[nodiscard]] class) with
# #2810; a false positive that g++ does not share. Real ignored results are still caught by the
# host compiler pass (-Wall, -Werror with TERN_WERROR).
set(TERN_CUDA_WARNING_FLAGS -Xcompiler=-Wall,-Wextra -diag-suppress=2810)
if(TERN_WERROR)
  list(APPEND TERN_CUDA_WARNING_FLAGS -Werror=all-warnings -Xcompiler=-Werror)
endif()

add_library(tern_kernels_cuda STATIC
  src/cuda/cuda_codec.cu
  src/cuda/encode_kernels.cu
  src/cuda/decode_kernels.cu
  src/cuda/scale_kernel.cu)
add_library(tern::kernels_cuda ALIAS tern_kernels_cuda)
target_include_directories(tern_kernels_cuda
  PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
  PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_link_libraries(tern_kernels_cuda PUBLIC tern::kernels CUDA::cudart_static)
# C++20 by flag: CMake < 3.27 does not know nvcc 12+'s C++20 dialect (CUDA_STANDARD 20 fails).
target_compile_options(tern_kernels_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 ${TERN_CUDA_EXACT_FLAGS} ${TERN_CUDA_WARNING_FLAGS} -lineinfo>)
set_target_properties(tern_kernels_cuda PROPERTIES
  CUDA_SEPARABLE_COMPILATION OFF
  CUDA_RUNTIME_LIBRARY Static
  POSITION_INDEPENDENT_CODE ON)

# tern-gpu-check: --check (bit-exact CPU vs GPU sweep), --bench (bandwidth table). Host code only
# (built by the C++ compiler with tern's warnings); no GoogleTest, so it builds on bare GPU boxes.
add_executable(tern-gpu-check tools/gpu_check.cc)
target_link_libraries(tern-gpu-check PRIVATE tern::kernels_cuda tern::kernels CUDA::cudart_static tern::build_options)
set_target_properties(tern-gpu-check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
