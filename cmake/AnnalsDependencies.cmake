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
if(ANNALS_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
