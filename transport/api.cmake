# tern::transport_api: the interface headers (include/tern/transport). Its own file so that
# scripts/gpu-check.sh's kernels-and-engine project can define it without the UCX/Boost parts.
add_library(tern_transport_api INTERFACE)
add_library(tern::transport_api ALIAS tern_transport_api)
target_include_directories(tern_transport_api INTERFACE $<BUILD_INTERFACE:${CMAKE_CURRENT_LIST_DIR}/include>)
target_link_libraries(tern_transport_api INTERFACE tern::common)
