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
# annals::relay, the optional outbox relay to brokers (docs/relay.md): the NATS C client
# (Debian libnats-dev, through pkg-config: the package's CMake config names a static library it
# does not ship) for its JetStream sink and cpp-httplib (Debian
# libcpp-httplib-dev, pkg-config) for its webhook sink. AUTO builds it when both are found.
set(ANNALS_RELAY AUTO CACHE STRING
    "Build annals::relay: ON (require libnats-dev and cpp-httplib), OFF, or AUTO (when found)")
set_property(CACHE ANNALS_RELAY PROPERTY STRINGS AUTO ON OFF)
set(ANNALS_HAVE_RELAY OFF)
if(ANNALS_RELAY)
  if(ANNALS_RELAY STREQUAL "AUTO")
    set(relay_required QUIET)
  else()
    set(relay_required REQUIRED)
  endif()
  find_package(PkgConfig ${relay_required})
  if(PkgConfig_FOUND)
    pkg_check_modules(ANNALS_NATS ${relay_required} IMPORTED_TARGET libnats)
    pkg_check_modules(ANNALS_HTTPLIB ${relay_required} IMPORTED_TARGET cpp-httplib)
  endif()
  if(TARGET PkgConfig::ANNALS_NATS AND TARGET PkgConfig::ANNALS_HTTPLIB)
    set(ANNALS_HAVE_RELAY ON)
  endif()
endif()
if(ANNALS_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
