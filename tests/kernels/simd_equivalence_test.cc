// Placeholder: SIMD == scalar bit-exact tests land with the AVX2/AVX-512 kernels.
