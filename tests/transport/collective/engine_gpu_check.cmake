# tern-engine-gpu-check (engine_gpu_check.cc): the engine on GPU tensors, bit for bit against host
# buffers, plus a timing. No GoogleTest: scripts/gpu-check.sh builds it on a bare GPU box too.
add_executable(tern-engine-gpu-check ${CMAKE_CURRENT_LIST_DIR}/engine_gpu_check.cc)
target_link_libraries(tern-engine-gpu-check PRIVATE tern::collective tern::transport_loopback CUDA::cudart_static
                                                    tern::build_options)
set_target_properties(tern-engine-gpu-check PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
