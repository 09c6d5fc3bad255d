# libFuzzer target for the bootstrap frame decoder (transport/bootstrap/wire.h); included from
# tests/fuzz/CMakeLists.txt (fuzz preset, clang). Like the chunk decoder's: a seed-corpus writer
# runs first (a ctest fixture), then the fuzzer runs for TERN_FUZZ_SECONDS over that corpus.
set(TERN_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs under ctest")
set(tern_bootstrap_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})

add_executable(fuzz_bootstrap_frame ${tern_bootstrap_fuzz_dir}/bootstrap_frame_fuzz.cc)
target_link_libraries(fuzz_bootstrap_frame PRIVATE tern::bootstrap tern::build_options)
target_include_directories(fuzz_bootstrap_frame PRIVATE ${PROJECT_SOURCE_DIR}/transport/bootstrap)
target_compile_options(fuzz_bootstrap_frame PRIVATE -fsanitize=fuzzer)
target_link_options(fuzz_bootstrap_frame PRIVATE -fsanitize=fuzzer)

add_executable(fuzz_bootstrap_seed_corpus ${tern_bootstrap_fuzz_dir}/bootstrap_make_seed_corpus.cc)
target_link_libraries(fuzz_bootstrap_seed_corpus PRIVATE tern::bootstrap tern::build_options)
target_include_directories(fuzz_bootstrap_seed_corpus PRIVATE ${PROJECT_SOURCE_DIR}/transport/bootstrap)

set(tern_bootstrap_corpus ${CMAKE_CURRENT_BINARY_DIR}/corpus/bootstrap_frame)
add_test(NAME fuzz_bootstrap_frame_seeds COMMAND fuzz_bootstrap_seed_corpus ${tern_bootstrap_corpus})
# New inputs go to the build tree's corpus. -max_len covers a join with its largest payload.
add_test(NAME fuzz_bootstrap_frame
         COMMAND fuzz_bootstrap_frame -max_total_time=${TERN_FUZZ_SECONDS} -rss_limit_mb=2048 -max_len=70000
                 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/bootstrap_frame- ${tern_bootstrap_corpus})
set_tests_properties(fuzz_bootstrap_frame_seeds PROPERTIES FIXTURES_SETUP bootstrap_frame_corpus LABELS fuzz)
set_tests_properties(fuzz_bootstrap_frame PROPERTIES FIXTURES_REQUIRED bootstrap_frame_corpus LABELS fuzz
                     TIMEOUT 600)
