# libpqxx 6.4 ships no CMake package, only pkg-config, and its .pc omits libpq.
# This wraps both into the target name libpqxx 7+ exports (libpqxx::pqxx), so an upgrade
# changes only this file. Used by the build and by the installed annalsConfig.cmake.
if(NOT TARGET libpqxx::pqxx)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET GLOBAL libpqxx)
  find_package(PostgreSQL REQUIRED)
  add_library(libpqxx::pqxx INTERFACE IMPORTED GLOBAL)
  target_link_libraries(libpqxx::pqxx INTERFACE PkgConfig::PQXX PostgreSQL::PostgreSQL)
  # The installed 6.4 headers do not define it; without it std::optional fields do not work.
  target_compile_definitions(libpqxx::pqxx INTERFACE PQXX_HAVE_OPTIONAL)
endif()
