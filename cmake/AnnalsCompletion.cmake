# Writes the bash completion script of the `annals` tool: runs `TOOL completion bash` into
# OUTPUT (cmake -DTOOL=... -DOUTPUT=... -P AnnalsCompletion.cmake; tools/annals/CMakeLists.txt).
# LeakSanitizer is off for this one run: a sanitizer build's tool must not fail the build.
set(ENV{ASAN_OPTIONS} "detect_leaks=0")
execute_process(COMMAND "${TOOL}" completion bash
  OUTPUT_FILE "${OUTPUT}.tmp"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "`${TOOL} completion bash` failed: ${result}")
endif()
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
