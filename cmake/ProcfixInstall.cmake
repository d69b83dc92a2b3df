# Install headers, libraries, procfix-supervisor, procfix-run, a CMake package and pkg-config files:
#   find_package(procfix CONFIG REQUIRED)  ->  procfix::fixtures, procfix::helpers,
#   procfix::procfix-run, procfix_add_shared_server()
#   pkg-config procfix-fixtures / procfix-helpers
# Every installed file is relocatable or names only the install prefix, never the build tree
# (tools/check greps the prefix for it): the CMake files and the .pc files find the prefix
# relative to themselves; the libraries find procfix-supervisor relative to themselves
# (fixtures/src/detail/supervisor_location.hpp).
include(CMakePackageConfigHelpers)

set(procfix_config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/procfix)

install(TARGETS procfix_fixtures procfix_helpers
  EXPORT procfix-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Where the fixtures library looks for it: <libdir>/../libexec/procfix, or <bindir>/../libexec/procfix.
install(TARGETS procfix_supervisor RUNTIME DESTINATION ${procfix_supervisor_dir})
# procfix::procfix-run: for procfix_add_shared_server (cmake/ProcfixSharedServer.cmake). Linked
# with a shared libprocfix_fixtures, it finds it relative to itself ($ORIGIN), wherever the prefix is.
file(RELATIVE_PATH procfix_libdir_from_bindir ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set_target_properties(procfix_run PROPERTIES INSTALL_RPATH "$ORIGIN/${procfix_libdir_from_bindir}")
install(TARGETS procfix_run EXPORT procfix-targets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT procfix-targets NAMESPACE procfix:: DESTINATION ${procfix_config_dir})

# The package's CMake files, made in a folder of their own (a build tree is not a package: use it
# with add_subdirectory, or install it).
set(procfix_package_dir ${PROJECT_BINARY_DIR}/package)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/procfix-config.cmake.in
  ${procfix_package_dir}/procfix-config.cmake INSTALL_DESTINATION ${procfix_config_dir})
write_basic_package_version_file(${procfix_package_dir}/procfix-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${procfix_package_dir}/procfix-config.cmake
              ${procfix_package_dir}/procfix-config-version.cmake
              ${PROJECT_SOURCE_DIR}/cmake/ProcfixSharedServer.cmake
        DESTINATION ${procfix_config_dir})

# pkg-config, for Meson and Make: procfix-fixtures.pc and procfix-helpers.pc, relocatable
# (prefix from ${pcfiledir}). A static library lists what it links in Requires/Libs (pkg-config
# without --static must be enough); a shared one in Requires.private/Libs.private.
file(RELATIVE_PATH procfix_prefix_from_pcfiledir ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" procfix_prefix_from_pcfiledir "${procfix_prefix_from_pcfiledir}")
# procfix_pkg_config(<name> <description> REQUIRES <module>... LINKS <module>... LIBS <flag>...)
# REQUIRES: what the public headers need; LINKS, LIBS: what the library links (a consumer of a
# shared one does not link them itself).
function(procfix_pkg_config name description)
  cmake_parse_arguments(arg "" "" "REQUIRES;LINKS;LIBS" ${ARGN})
  get_target_property(type procfix_${name} TYPE)
  list(JOIN arg_LIBS " " libs)
  if(type STREQUAL "SHARED_LIBRARY")
    list(JOIN arg_REQUIRES ", " requires)
    if(arg_LINKS)
      list(JOIN arg_LINKS ", " links)
      string(APPEND requires "\nRequires.private: ${links}")
    endif()
    set(libs "\nLibs.private: ${libs}")
  else()
    list(JOIN arg_REQUIRES ", " requires)
    if(arg_LINKS)
      list(JOIN arg_LINKS ", " links)
      string(APPEND requires ", ${links}")
    endif()
    set(libs " ${libs}")
  endif()
  set(file ${procfix_package_dir}/procfix-${name}.pc)
  file(WRITE ${file} "prefix=\${pcfiledir}/${procfix_prefix_from_pcfiledir}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}

Name: procfix-${name}
Description: ${description}
Version: ${PROJECT_VERSION}
Requires: ${requires}
Libs: -L\${libdir} -lprocfix_${name}${libs}
Cflags: -I\${includedir}
")
  install(FILES ${file} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
# Boost (headers only) has no .pc file on Debian: it is in /usr/include, found without flags.
procfix_pkg_config(fixtures "procfix: GoogleTest fixtures that start servers and check their stop"
  REQUIRES "gtest >= 1.12" "nlohmann_json >= 3" LINKS re2 LIBS -pthread)
procfix_pkg_config(helpers "procfix: server-side readiness and graceful-shutdown helpers"
  REQUIRES "nlohmann_json >= 3" LIBS -pthread)
