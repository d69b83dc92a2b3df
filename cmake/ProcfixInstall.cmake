# Install headers, libraries, procfix-supervisor and a CMake package:
#   find_package(procfix CONFIG REQUIRED)  ->  procfix::fixtures, procfix::helpers,
#   procfix::procfix-run, procfix_add_shared_server()
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(procfix_config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/procfix)

install(TARGETS procfix_fixtures procfix_helpers
  EXPORT procfix-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The fixtures library looks for the supervisor here (PROCFIX_SUPERVISOR_INSTALL_PATH).
install(TARGETS procfix_supervisor RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR})
# procfix::procfix-run: for procfix_add_shared_server (cmake/ProcfixSharedServer.cmake).
install(TARGETS procfix_run EXPORT procfix-targets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT procfix-targets NAMESPACE procfix:: DESTINATION ${procfix_config_dir})
export(EXPORT procfix-targets NAMESPACE procfix::
       FILE ${PROJECT_BINARY_DIR}/procfix-targets.cmake)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/procfix-config.cmake.in
  ${PROJECT_BINARY_DIR}/procfix-config.cmake INSTALL_DESTINATION ${procfix_config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/procfix-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/procfix-config.cmake
              ${PROJECT_BINARY_DIR}/procfix-config-version.cmake
              ${PROJECT_SOURCE_DIR}/cmake/ProcfixSharedServer.cmake
        DESTINATION ${procfix_config_dir})
