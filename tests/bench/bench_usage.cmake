# cmake -DBENCH=<annals-bench> -DSNAPSHOT_BENCH=<snapshot-save-bench> -P bench_usage.cmake
#
# The benchmarks' command lines (CLI11), without a server: --help lists every flag, and each
# kind of bad input exits 2 with a message naming what was wrong, before any connection is
# tried. annals_bench_smoke runs a real measurement with the flags scripts/bench uses.
cmake_minimum_required(VERSION 3.25)

# expect(<exit code> <regex> <args>...): runs annals-bench ARGS without ANNALS_DATABASE_URL.
function(expect code regex)
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=ANNALS_DATABASE_URL ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL code OR NOT out MATCHES "${regex}")
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "${command}: expected exit ${code} and output matching '${regex}', got "
      "exit ${rc}:\n${out}")
  endif()
  message(STATUS "ok: exit ${rc}: ${ARGN}")
  set(output "${out}" PARENT_SCOPE)
endfunction()

expect(0 "figures: append_w1" "${BENCH}" --help)
foreach(flag --db --json --seconds --rounds --only --notify --warmup --read-events --framework
    --projections --projection-batch --long-haul --long-haul-events --long-haul-small
    --long-haul-window --long-haul-samples --long-haul-replay --long-haul-writers
    --long-haul-reuse --long-haul-build-only --long-haul-no-verify --long-haul-prewarm
    --long-haul-partitioned)
  if(NOT output MATCHES "${flag}[ =]")
    message(FATAL_ERROR "annals-bench --help does not list ${flag}:\n${output}")
  endif()
endforeach()

expect(2 "no database: pass --db URL or set ANNALS_DATABASE_URL" "${BENCH}" --json)
expect(2 "--notify" "${BENCH}" --db x --notify maybe)
expect(2 "--seconds: .*expected a number >= 0.1, got '0.01'" "${BENCH}" --db x --seconds 0.01)
expect(2 "--rounds: .*expected a number >= 1, got 'three'" "${BENCH}" --db x --rounds three)
expect(2 "--read-events: .*expected a number >= 1000" "${BENCH}" --db x --read-events 10)
expect(2 "--only: unknown figure 'nope'" "${BENCH}" --db x --only append_w1,nope)
expect(2 "--only: no figure named" "${BENCH}" --db x --only ,)
expect(2 "--long-haul runs alone" "${BENCH}" --db x --long-haul --framework)
expect(2 "--long-haul-events must be larger than --long-haul-small" "${BENCH}" --db x
  --long-haul --long-haul-events 1e3 --long-haul-small 1000)
expect(2 "--bogus" "${BENCH}" --db x --bogus)
expect(2 "--seconds" "${BENCH}" --db x --seconds)

if(SNAPSHOT_BENCH)
  expect(0 "--async-commit" "${SNAPSHOT_BENCH}" --help)
  expect(2 "no database" "${SNAPSHOT_BENCH}" --saves 10)
  expect(2 "--async-commit" "${SNAPSHOT_BENCH}" --db x --async-commit maybe)
  expect(2 "--saves" "${SNAPSHOT_BENCH}" --db x --saves 0)
endif()
