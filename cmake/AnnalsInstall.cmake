# The installed package (docs/getting-started.md, "Using annals from your CMake project"):
#  - the CMake package `annals` (lib/cmake/annals), one component per library, each with its
#    own export set annals-<component> and file annals-<component>-targets.cmake, loaded by
#    annalsConfig.cmake only when asked for (cmake/annalsConfig.cmake.in);
#  - one pkg-config file per library (lib/pkgconfig/annals-<name>.pc, cmake/annals.pc.in);
#  - the licence (share/doc/annals/LICENSE), also named in both package formats;
#  - CPack metadata (`cpack` in the build folder makes a .tar.gz of the install).
# Included by the top-level CMakeLists.txt when ANNALS_INSTALL is on; each library's own
# CMakeLists.txt installs its target into its export set.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(ANNALS_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/annals")

# --- The CMake package ---------------------------------------------------------------------------
set(ANNALS_COMPONENTS eventstore postgres framework personal_data projections
  projections_postgres)
if(TARGET annals_testkit)
  list(APPEND ANNALS_COMPONENTS testkit)
endif()
if(TARGET annals_testkit_read_models)
  list(APPEND ANNALS_COMPONENTS testkit_postgres)
endif()
if(TARGET annals_prometheus)
  list(APPEND ANNALS_COMPONENTS prometheus)
endif()
if(TARGET annals_relay)
  list(APPEND ANNALS_COMPONENTS relay)
endif()
foreach(component IN LISTS ANNALS_COMPONENTS)
  install(EXPORT annals-${component} NAMESPACE annals:: FILE annals-${component}-targets.cmake
    DESTINATION "${ANNALS_CMAKE_DIR}")
endforeach()
configure_package_config_file(cmake/annalsConfig.cmake.in
  "${PROJECT_BINARY_DIR}/annalsConfig.cmake" INSTALL_DESTINATION "${ANNALS_CMAKE_DIR}")
# 0.x: a minor version may break the API, so 0.1.y satisfies `find_package(annals 0.1)` only.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/annalsConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/annalsConfig.cmake"
  "${PROJECT_BINARY_DIR}/annalsConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/AnnalsFindPqxx.cmake" DESTINATION "${ANNALS_CMAKE_DIR}")

# --- pkg-config ----------------------------------------------------------------------------------
# The libraries are static archives by default, so what they link privately is still needed
# when a program links them: then it goes to Requires/Libs (what `pkg-config --libs` prints);
# with BUILD_SHARED_LIBS=ON it goes to Requires.private/Libs.private.
set(ANNALS_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(ANNALS_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(ANNALS_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  # ${pcfiledir} is the folder of the .pc file; climb from lib[/<triplet>]/pkgconfig to the prefix.
  file(RELATIVE_PATH up "/prefix/${ANNALS_PC_DIR}" "/prefix")
  string(REGEX REPLACE "/$" "" up "${up}")
  set(ANNALS_PC_PREFIX "\${pcfiledir}/${up}")
  set(ANNALS_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(ANNALS_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(ANNALS_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# annals_pkg_config(<name> DESCRIPTION <text> [LIBRARY <archive name>] [REQUIRES ...]
#                   [LINK_REQUIRES ...] [LINK_FLAGS ...])
# REQUIRES: modules the headers need; LINK_REQUIRES and LINK_FLAGS: what the library links
# privately (see above).
function(annals_pkg_config name)
  cmake_parse_arguments(ARG "" "DESCRIPTION;LIBRARY" "REQUIRES;LINK_REQUIRES;LINK_FLAGS" ${ARGN})
  set(ANNALS_PC_NAME "${name}")
  set(ANNALS_PC_DESCRIPTION "${ARG_DESCRIPTION}")
  set(requires ${ARG_REQUIRES})
  set(requires_private "")
  set(libs "")
  if(ARG_LIBRARY)
    set(libs "-L\${libdir} -l${ARG_LIBRARY}")
  endif()
  set(libs_private "")
  if(BUILD_SHARED_LIBS)
    list(APPEND requires_private ${ARG_LINK_REQUIRES})
    list(JOIN ARG_LINK_FLAGS " " libs_private)
  else()
    list(APPEND requires ${ARG_LINK_REQUIRES})
    list(JOIN ARG_LINK_FLAGS " " flags)
    string(STRIP "${libs} ${flags}" libs)
  endif()
  list(JOIN requires ", " ANNALS_PC_REQUIRES)
  list(JOIN requires_private ", " ANNALS_PC_REQUIRES_PRIVATE)
  set(ANNALS_PC_LIBS "${libs}")
  set(ANNALS_PC_LIBS_PRIVATE "${libs_private}")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/annals.pc.in"
    "${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc" DESTINATION "${ANNALS_PC_DIR}")
endfunction()

# Boost (headers only, for the UUID type) has no pkg-config file: its headers are expected on
# the compiler's default path, as Debian's libboost-dev installs them.
annals_pkg_config(annals-eventstore
  DESCRIPTION "annals event store: value types, errors, the EventStore interface, in-memory store"
  LIBRARY annals_eventstore REQUIRES "nlohmann_json >= 3.11" LINK_REQUIRES spdlog
  LINK_FLAGS -pthread)
annals_pkg_config(annals-framework
  DESCRIPTION "annals framework: event registry, deciders, repository, command bus"
  LIBRARY annals_framework REQUIRES "annals-eventstore = ${PROJECT_VERSION}")
annals_pkg_config(annals-personal-data
  DESCRIPTION "annals personal data: per-subject keys, AES-256-GCM envelopes, forget"
  LIBRARY annals_personal_data REQUIRES "annals-framework = ${PROJECT_VERSION}"
  LINK_REQUIRES libcrypto)
annals_pkg_config(annals-projections
  DESCRIPTION "annals projections: runner, ProjectionStore, in-memory projection store"
  LIBRARY annals_projections REQUIRES "annals-eventstore = ${PROJECT_VERSION}"
  "annals-framework = ${PROJECT_VERSION}")
annals_pkg_config(annals-postgres
  DESCRIPTION "annals PostgreSQL event store, migrations and verify"
  LIBRARY annals_postgres REQUIRES "annals-eventstore = ${PROJECT_VERSION}"
  LINK_REQUIRES libpqxx libpq libcrypto)
annals_pkg_config(annals-projections-postgres
  DESCRIPTION "annals PostgreSQL projection store and read-model projections"
  LIBRARY annals_projections_postgres
  REQUIRES "annals-projections = ${PROJECT_VERSION}" "annals-postgres = ${PROJECT_VERSION}")
if(TARGET annals_relay)
  annals_pkg_config(annals-relay
    DESCRIPTION "annals relay: selected events to NATS JetStream or a webhook, in order"
    LIBRARY annals_relay REQUIRES "annals-projections = ${PROJECT_VERSION}"
    LINK_REQUIRES libnats cpp-httplib)
endif()
if(TARGET annals_testkit)
  annals_pkg_config(annals-testkit
    DESCRIPTION "annals test kit: given/when/then, the store contract suites (GoogleTest)"
    REQUIRES "annals-framework = ${PROJECT_VERSION}" "annals-projections = ${PROJECT_VERSION}"
    gtest gmock)
endif()

# --- Licence and CPack ---------------------------------------------------------------------------
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

set(CPACK_PACKAGE_NAME annals)
set(CPACK_PACKAGE_VENDOR "the annals authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")
set(CPACK_GENERATOR TGZ)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/build/" "/\\\\.git/")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "the annals authors")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_RPM_PACKAGE_LICENSE MIT)
include(CPack)
