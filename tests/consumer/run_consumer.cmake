# cmake -DMODE=... -DANNALS_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -DCONFIG=...
#       -DGENERATOR=... -DCXX_COMPILER=... -DSANITIZERS=ON|OFF -P run_consumer.cmake
#
# Every mode first installs the annals build into a scratch prefix (<work>/prefix), then uses
# that prefix only:
#   find_package  configure + build CONSUMER_SOURCE_DIR (tests/consumer/project: every library
#                 and the test kit), run annals_consumer and annals_consumer_tests
#   in_memory     the same for tests/consumer/in_memory (components eventstore, framework,
#                 projections, testkit) with libpqxx, libpq, OpenSSL and pkg-config hidden; then
#                 check that requiring the postgres component there fails, naming libpqxx
#   pkg_config    the .pc files: the in-memory modules require nothing of PostgreSQL; compile and
#                 link CONSUMER_SOURCE_DIR/main.cpp with `pkg-config --cflags --libs
#                 annals-postgres` alone, and run it
#   quickstart    configure + build examples/quickstart, run its tests (WalletTest, and
#                 WalletBalancesTest in memory and on the server of ANNALS_DATABASE_URL, which
#                 must be set, and QuickstartTest: the program on a fresh database)
# When annals is built with sanitizers its static libraries need the sanitizer runtimes, so the
# consumer is built with the same flags (any user linking an ASan build would have to).
cmake_minimum_required(VERSION 3.25)

foreach(var MODE ANNALS_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()
if("${CONFIG}" STREQUAL "")
  set(CONFIG Debug)
endif()

# run_step(<what> [EXPECT_FAILURE <regex>] COMMAND <command>...): runs the command; it must
# succeed, or with EXPECT_FAILURE fail with output matching the regex.
function(run_step what)
  cmake_parse_arguments(ARG "" "EXPECT_FAILURE" "COMMAND" ${ARGN})
  execute_process(COMMAND ${ARG_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(DEFINED ARG_EXPECT_FAILURE)
    if(rc EQUAL 0 OR NOT out MATCHES "${ARG_EXPECT_FAILURE}")
      message(FATAL_ERROR "consumer test: ${what}: expected a failure matching "
        "'${ARG_EXPECT_FAILURE}', got exit ${rc}:\n${out}")
    endif()
    message(STATUS "consumer test: ${what}: failed as expected")
    return()
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "consumer test: ${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

run_step("install annals into ${prefix}" COMMAND
  "${CMAKE_COMMAND}" --install "${ANNALS_BUILD_DIR}" --prefix "${prefix}" --config "${CONFIG}")
if(NOT EXISTS "${prefix}/share/doc/annals/LICENSE")
  message(FATAL_ERROR "consumer test: the install has no share/doc/annals/LICENSE")
endif()
if(EXISTS "${prefix}/bin/annals" AND
   NOT EXISTS "${prefix}/share/bash-completion/completions/annals")
  message(FATAL_ERROR "consumer test: the install has the annals tool but not its bash "
                      "completion (share/bash-completion/completions/annals)")
endif()

set(flags "${CXX_FLAGS}")
set(link_flags "${EXE_LINKER_FLAGS}")
if(SANITIZERS)
  string(APPEND flags " -fsanitize=address,undefined -fno-omit-frame-pointer")
  string(APPEND link_flags " -fsanitize=address,undefined")
endif()
string(STRIP "${flags}" flags)
string(STRIP "${link_flags}" link_flags)

# Compile jobs of each consumer build: ANNALS_BUILD_JOBS, default 2 (the machines have 2 cores,
# and ctest may run two of these tests at once).
set(jobs "$ENV{ANNALS_BUILD_JOBS}")
if(NOT jobs MATCHES "^[1-9][0-9]*$")
  set(jobs 2)
endif()

# Only the scratch prefix is searched for annals, never the build tree or the user's registry.
set(configure_args -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
  "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${link_flags}")

function(executable name out)
  if(MULTI_CONFIG)
    set(${out} "${build}/${CONFIG}/${name}" PARENT_SCOPE)
  else()
    set(${out} "${build}/${name}" PARENT_SCOPE)
  endif()
endfunction()

if(MODE STREQUAL "find_package")
  run_step("configure the consumer" COMMAND
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build}" ${configure_args})
  run_step("build the consumer" COMMAND
    "${CMAKE_COMMAND}" --build "${build}" --config "${CONFIG}" --parallel ${jobs})
  executable(annals_consumer exe)
  run_step("run the consumer" COMMAND "${exe}")
  run_step("run the consumer's tests (annals::testkit)" COMMAND "${exe}_tests" --gtest_brief=1)

elseif(MODE STREQUAL "in_memory")
  # Nothing of the PostgreSQL side can be found: no pkg-config (libpqxx has only a .pc file),
  # no FindPostgreSQL, no OpenSSL. The in-memory components must not need them.
  set(no_pkg_config "${WORK_DIR}/no-pkg-config")
  file(MAKE_DIRECTORY "${no_pkg_config}")
  set(hidden "${CMAKE_COMMAND}" -E env "PKG_CONFIG_LIBDIR=${no_pkg_config}"
    "PKG_CONFIG_PATH=${no_pkg_config}" "${CMAKE_COMMAND}")
  set(hide_args -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_PostgreSQL=ON -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON)
  run_step("configure the in-memory consumer with libpqxx hidden" COMMAND
    ${hidden} -S "${CONSUMER_SOURCE_DIR}" -B "${build}" ${configure_args} ${hide_args})
  run_step("build the in-memory consumer" COMMAND
    "${CMAKE_COMMAND}" --build "${build}" --config "${CONFIG}" --parallel ${jobs})
  executable(in_memory_consumer exe)
  run_step("run the in-memory consumer" COMMAND "${exe}" --gtest_brief=1)
  run_step("require the postgres component with libpqxx hidden"
    EXPECT_FAILURE "component.*postgres.*needs.*libpqxx"
    COMMAND ${hidden} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build-postgres"
      ${configure_args} ${hide_args} -DREQUIRE_POSTGRES=ON)

elseif(MODE STREQUAL "pkg_config")
  find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
  file(GLOB_RECURSE pc_files "${prefix}/*/annals-eventstore.pc")
  list(LENGTH pc_files n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "consumer test: expected one annals-eventstore.pc under ${prefix}, found "
      "${n}: ${pc_files}")
  endif()
  get_filename_component(pc_dir "${pc_files}" DIRECTORY)
  set(pkg "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${pc_dir}" "${PKG_CONFIG}")
  set(modules annals-eventstore annals-framework annals-projections annals-postgres
    annals-projections-postgres)
  run_step("pkg-config finds every module" COMMAND ${pkg} --exists --print-errors ${modules})
  foreach(module IN LISTS modules)
    file(READ "${pc_dir}/${module}.pc" text)
    if(NOT text MATCHES "\nLicense: MIT\n")
      message(FATAL_ERROR "consumer test: ${module}.pc names no licence (License: MIT)")
    endif()
  endforeach()
  run_step("pkg-config --libs of the in-memory modules" COMMAND
    ${pkg} --libs annals-eventstore annals-framework annals-projections)
  if(step_output MATCHES "pqxx|-lpq|crypto|ssl")
    message(FATAL_ERROR "consumer test: the in-memory modules link PostgreSQL: ${step_output}")
  endif()
  run_step("pkg-config --cflags --libs annals-postgres" COMMAND
    ${pkg} --cflags --libs annals-postgres)
  separate_arguments(pc_flags UNIX_COMMAND "${step_output}")
  separate_arguments(cxx_flags UNIX_COMMAND "${flags}")
  separate_arguments(ld_flags UNIX_COMMAND "${link_flags}")
  set(exe "${WORK_DIR}/pkg_config_consumer")
  run_step("compile and link with pkg-config's flags only" COMMAND
    "${CXX_COMPILER}" -std=c++20 ${cxx_flags} "${CONSUMER_SOURCE_DIR}/main.cpp" -o "${exe}"
    ${pc_flags} ${ld_flags})
  run_step("run the pkg-config consumer" COMMAND "${exe}")

elseif(MODE STREQUAL "quickstart")
  if("$ENV{ANNALS_DATABASE_URL}" STREQUAL "")
    message(FATAL_ERROR "consumer test: the quickstart's tests need ANNALS_DATABASE_URL "
      "(scripts/test sets it; scripts/pg start && export ANNALS_DATABASE_URL=$(scripts/pg url))")
  endif()
  run_step("configure examples/quickstart" COMMAND
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build}" ${configure_args})
  run_step("build examples/quickstart" COMMAND
    "${CMAKE_COMMAND}" --build "${build}" --config "${CONFIG}" --parallel ${jobs})
  executable(quickstart_tests exe)
  if(NOT EXISTS "${exe}")
    message(FATAL_ERROR "consumer test: ${exe} was not built (no annals testkit component?)")
  endif()
  run_step("run the quickstart's tests" COMMAND "${exe}")
  # Every test ran: none was skipped for want of a server.
  if(step_output MATCHES "SKIPPED" OR NOT step_output MATCHES "PASSED.*6 tests")
    message(FATAL_ERROR "consumer test: the quickstart's tests did not all run:\n${step_output}")
  endif()
  message(STATUS "${step_output}")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()
