# cmake -DANNALS_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -DCONFIG=...
#       -DGENERATOR=... -DCXX_COMPILER=... -DSANITIZERS=ON|OFF -P run_consumer.cmake
#
# 1. cmake --install <annals build> --prefix <work>/prefix
# 2. configure + build tests/consumer/project against that prefix only
# 3. run the consumer; it must exit 0
# When annals is built with sanitizers its static libraries need the sanitizer runtimes, so the
# consumer is built with the same flags (any user linking an ASan build would have to).
cmake_minimum_required(VERSION 3.25)

foreach(var ANNALS_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()
if("${CONFIG}" STREQUAL "")
  set(CONFIG Debug)
endif()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "consumer test: ${what}: ok")
endfunction()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

run_step("install annals into ${prefix}"
  "${CMAKE_COMMAND}" --install "${ANNALS_BUILD_DIR}" --prefix "${prefix}" --config "${CONFIG}")

set(flags "${CXX_FLAGS}")
set(link_flags "${EXE_LINKER_FLAGS}")
if(SANITIZERS)
  string(APPEND flags " -fsanitize=address,undefined -fno-omit-frame-pointer")
  string(APPEND link_flags " -fsanitize=address,undefined")
endif()

# Only the scratch prefix is searched for annals, never the build tree or the user's registry.
run_step("configure the consumer"
  "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
    "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${link_flags}")
run_step("build the consumer" "${CMAKE_COMMAND}" --build "${build}" --config "${CONFIG}")

if(MULTI_CONFIG)
  set(exe "${build}/${CONFIG}/annals_consumer")
else()
  set(exe "${build}/annals_consumer")
endif()
run_step("run the consumer" "${exe}")
run_step("run the consumer's tests (annals::testkit)" "${exe}_tests" --gtest_brief=1)
