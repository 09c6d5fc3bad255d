# GPU tests (label `gpu`), built whenever the CUDA kernels are. Each test skips itself, with the
# reason from cuda::device_available(), on a machine without a usable GPU, so ctest passes there.
tern_add_test(kernels_cuda_test
  SOURCES cuda_codec_test.cc
  LIBS tern::kernels_cuda tern::kernels CUDA::cudart_static
  LABELS gpu)
