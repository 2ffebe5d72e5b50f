# libpqxx 6.4 ships no CMake package, only pkg-config, and its .pc omits libpq.
# This wraps both into the target name libpqxx 7+ exports (libpqxx::pqxx), so an upgrade
# changes only this file. Used by the build (cmake/AnnalsDependencies.cmake, which fails when
# it is missing) and by the installed annalsConfig.cmake for the `postgres` component only.
# Never fails by itself: sets ANNALS_PQXX_FOUND, and ANNALS_PQXX_MISSING to what was not found.
set(ANNALS_PQXX_MISSING "")
if(NOT TARGET libpqxx::pqxx)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PQXX QUIET IMPORTED_TARGET GLOBAL libpqxx)
  endif()
  if(NOT PQXX_FOUND)
    list(APPEND ANNALS_PQXX_MISSING "libpqxx (pkg-config module libpqxx, Debian: libpqxx-dev)")
  endif()
  find_package(PostgreSQL QUIET)
  if(NOT PostgreSQL_FOUND)
    list(APPEND ANNALS_PQXX_MISSING "libpq (CMake's FindPostgreSQL, Debian: libpq-dev)")
  endif()
  if(PQXX_FOUND AND PostgreSQL_FOUND)
    add_library(libpqxx::pqxx INTERFACE IMPORTED GLOBAL)
    target_link_libraries(libpqxx::pqxx INTERFACE PkgConfig::PQXX PostgreSQL::PostgreSQL)
    # The installed 6.4 headers do not define it; without it std::optional fields do not work.
    target_compile_definitions(libpqxx::pqxx INTERFACE PQXX_HAVE_OPTIONAL)
  endif()
endif()
if(TARGET libpqxx::pqxx)
  set(ANNALS_PQXX_FOUND TRUE)
else()
  set(ANNALS_PQXX_FOUND FALSE)
endif()
