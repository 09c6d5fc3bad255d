# CUDA tests (placeholder until they land).
