# libFuzzer target for ternd's control-protocol decoder (daemon/include/tern/daemon/protocol.h);
# included from tests/fuzz/CMakeLists.txt. A seed-corpus writer runs first (a ctest fixture).
set(tern_control_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
add_executable(fuzz_control_frame ${tern_control_fuzz_dir}/control_frame_fuzz.cc)
target_link_libraries(fuzz_control_frame PRIVATE tern::daemon_protocol tern::build_options)
target_compile_options(fuzz_control_frame PRIVATE -fsanitize=fuzzer)
target_link_options(fuzz_control_frame PRIVATE -fsanitize=fuzzer)

add_executable(fuzz_control_seed_corpus ${tern_control_fuzz_dir}/control_make_seed_corpus.cc)
target_link_libraries(fuzz_control_seed_corpus PRIVATE tern::daemon_protocol tern::build_options)

set(tern_control_corpus ${CMAKE_CURRENT_BINARY_DIR}/corpus/control_frame)
add_test(NAME fuzz_control_frame_seeds COMMAND fuzz_control_seed_corpus ${tern_control_corpus})
add_test(NAME fuzz_control_frame
         COMMAND fuzz_control_frame -max_total_time=${TERN_FUZZ_SECONDS} -rss_limit_mb=2048 -max_len=8192
                 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/control_frame- ${tern_control_corpus})
set_tests_properties(fuzz_control_frame_seeds PROPERTIES FIXTURES_SETUP control_frame_corpus LABELS fuzz)
set_tests_properties(fuzz_control_frame PROPERTIES FIXTURES_REQUIRED control_frame_corpus LABELS fuzz TIMEOUT 600)
