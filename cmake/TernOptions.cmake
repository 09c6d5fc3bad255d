# Build options and the compile settings every tern target links through tern::build_options.
include_guard(GLOBAL)

option(TERN_WERROR "Treat compiler warnings as errors" OFF)
option(TERN_BUILD_TESTS "Build the GoogleTest suite" ON)
option(TERN_BUILD_BENCHMARKS "Build the benchmark tools" ON)
option(TERN_FUZZ "Build libFuzzer targets (needs clang)" OFF)
set(TERN_SANITIZE "" CACHE STRING "Sanitizers: '', 'address,undefined' or 'thread'")

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

add_library(tern_build_options INTERFACE)
add_library(tern::build_options ALIAS tern_build_options)
target_compile_features(tern_build_options INTERFACE cxx_std_20)
target_compile_options(tern_build_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
                               -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wnull-dereference
                               -fno-strict-aliasing>
  # Codec results must be bit-identical across scalar, SIMD and CUDA code: no contraction of
  # a*b+c into FMA anywhere (GCC contracts by default in GNU mode once FMA is enabled).
  $<$<COMPILE_LANGUAGE:CXX,C>:-ffp-contract=off>
  $<$<AND:$<COMPILE_LANGUAGE:CXX,C>,$<BOOL:${TERN_WERROR}>>:-Werror>)
set_target_properties(tern_build_options PROPERTIES INTERFACE_POSITION_INDEPENDENT_CODE ON)

if(TERN_SANITIZE)
  target_compile_options(tern_build_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=${TERN_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
  target_link_options(tern_build_options INTERFACE -fsanitize=${TERN_SANITIZE})
endif()

if(TERN_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "TERN_FUZZ needs clang (use the 'fuzz' preset)")
endif()
