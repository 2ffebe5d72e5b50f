# Every third-party dependency of annals, found once (Debian 12 packages; scripts/bootstrap
# installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
# SHA-256 for verify's client-side hashing (annals::postgres, privately).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
include(AnnalsFindPqxx)
if(NOT ANNALS_PQXX_FOUND)
  list(JOIN ANNALS_PQXX_MISSING ", " missing)
  message(FATAL_ERROR "annals needs libpqxx and libpq; not found: ${missing} (scripts/bootstrap)")
endif()
# annals::prometheus, the optional MetricsSink adapter (docs/observability.md): prometheus-cpp's
# core library (Debian prometheus-cpp-dev). AUTO builds it when the package is found.
set(ANNALS_PROMETHEUS AUTO CACHE STRING
    "Build annals::prometheus: ON (require prometheus-cpp), OFF, or AUTO (when found)")
set_property(CACHE ANNALS_PROMETHEUS PROPERTY STRINGS AUTO ON OFF)
if(ANNALS_PROMETHEUS STREQUAL "AUTO")
  find_package(prometheus-cpp CONFIG QUIET)
elseif(ANNALS_PROMETHEUS)
  find_package(prometheus-cpp CONFIG REQUIRED)
endif()
if(prometheus-cpp_FOUND AND TARGET prometheus-cpp::core)
  set(ANNALS_HAVE_PROMETHEUS ON)
else()
  set(ANNALS_HAVE_PROMETHEUS OFF)
endif()
if(ANNALS_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
