# annals_target_defaults(<target>): C++20, our warnings and sanitizers, applied PRIVATE to
# annals' own targets only (third-party headers are system headers and stay quiet).
set(ANNALS_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough -Wformat=2
  # Options structs are meant to be filled with designated initializers that omit defaulted
  # fields ({.connection_string = url}); GCC 12's -Wextra reports every omitted field.
  -Wno-missing-field-initializers)

function(annals_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE ${ANNALS_WARNINGS}
    # GCC 12 at -O3 reports a false -Wrestrict inside libstdc++ string concatenation (PR105651).
    $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>
    $<$<BOOL:${ANNALS_WARNINGS_AS_ERRORS}>:-Werror>)
  if(ANNALS_SANITIZERS)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(ANNALS_FUZZ)
    # Coverage for libFuzzer in every annals target; only the fuzzers link its runtime.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link ${ANNALS_FUZZ_SANITIZERS})
    target_link_options(${target} PRIVATE ${ANNALS_FUZZ_SANITIZERS})
  endif()
endfunction()

# Executables and test binaries link the sanitizer runtime too.
function(annals_executable_defaults target)
  annals_target_defaults(${target})
endfunction()
