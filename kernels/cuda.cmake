# CUDA kernels (placeholder until they land).
