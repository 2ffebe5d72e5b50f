# libFuzzer support (docs/fuzzing.md). With ANNALS_FUZZ=ON (the `fuzz` preset: clang), every
# annals target is compiled with -fsanitize=fuzzer-no-link,address,undefined through
# annals_target_defaults, and annals_add_fuzzer() adds libFuzzer targets linked with
# -fsanitize=fuzzer. With ANNALS_FUZZ=OFF, annals_add_fuzzer() does nothing, so any
# CMakeLists.txt may call it unconditionally.
option(ANNALS_FUZZ "Build the libFuzzer targets (clang only; the fuzz preset)" OFF)

set(ANNALS_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer)
set(ANNALS_FUZZ_OUTPUT_DIR "${CMAKE_BINARY_DIR}/fuzzers")
# One line per fuzzer, "name|executable|corpus directory|max_len", read by scripts/fuzz.
set(ANNALS_FUZZ_MANIFEST "${CMAKE_BINARY_DIR}/fuzzers.txt")

if(ANNALS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ANNALS_FUZZ needs clang (libFuzzer); configure with the fuzz preset")
  endif()
  file(WRITE "${ANNALS_FUZZ_MANIFEST}" "")
  # `cmake --build build/fuzz --target annals_fuzzers` builds every fuzzer and nothing else.
  add_custom_target(annals_fuzzers)
endif()

# annals_add_fuzzer(<name> SOURCES <file>... [LIBS <target>...] [CORPUS <dir>] [MAX_LEN <n>])
# Adds the libFuzzer executable <name> (its sources define LLVMFuzzerTestOneInput), registers
# it with scripts/fuzz and with the target annals_fuzzers. CORPUS is its seed corpus, kept in
# the repository (default: corpus/<name> beside the calling CMakeLists.txt); MAX_LEN bounds the
# inputs libFuzzer generates (default 4096 bytes).
function(annals_add_fuzzer name)
  cmake_parse_arguments(ARG "" "CORPUS;MAX_LEN" "SOURCES;LIBS" ${ARGN})
  if(NOT ANNALS_FUZZ)
    return()
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "annals_add_fuzzer(${name}): SOURCES is required")
  endif()
  if(NOT ARG_CORPUS)
    set(ARG_CORPUS "${CMAKE_CURRENT_SOURCE_DIR}/corpus/${name}")
  endif()
  if(NOT ARG_MAX_LEN)
    set(ARG_MAX_LEN 4096)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  annals_target_defaults(${name})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer ${ANNALS_FUZZ_SANITIZERS})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${ANNALS_FUZZ_OUTPUT_DIR}")
  add_dependencies(annals_fuzzers ${name})
  file(APPEND "${ANNALS_FUZZ_MANIFEST}"
    "${name}|${ANNALS_FUZZ_OUTPUT_DIR}/${name}|${ARG_CORPUS}|${ARG_MAX_LEN}\n")
endfunction()
