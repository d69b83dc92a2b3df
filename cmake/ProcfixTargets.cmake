# Shared helpers so that each folder's CMakeLists.txt stays small.

# procfix_set_warnings(<target>): the project's warning policy.
function(procfix_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(PROCFIX_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# procfix_add_library(<name> SOURCES <file>... HEADERS <file name>...)
# One library per top-level folder: target procfix_<name>, alias procfix::<name>, static or shared
# (BUILD_SHARED_LIBS). HEADERS names the public headers in the folder's include/procfix/<name>/
# (a FILE_SET HEADERS, installed as <includedir>/procfix/<name>/). Symbols are hidden
# (-fvisibility=hidden) but for the public API, which procfix/<name>/export.hpp marks with
# PROCFIX_<NAME>_API. As fmt does, VERSION is the project's version and SOVERSION the ABI version:
# the major version, or "0.<minor>" while the major is 0 (every 0.x release may change the ABI;
# procfix-config-version.cmake says SameMinorVersion).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(procfix_soversion 0.${PROJECT_VERSION_MINOR})
else()
  set(procfix_soversion ${PROJECT_VERSION_MAJOR})
endif()
function(procfix_add_library name)
  cmake_parse_arguments(arg "" "" "SOURCES;HEADERS" ${ARGN})
  list(TRANSFORM arg_HEADERS PREPEND include/procfix/${name}/)
  add_library(procfix_${name} ${arg_SOURCES})
  add_library(procfix::${name} ALIAS procfix_${name})
  set_target_properties(procfix_${name} PROPERTIES
    EXPORT_NAME ${name}
    OUTPUT_NAME procfix_${name}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${procfix_soversion}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  target_sources(procfix_${name} PUBLIC FILE_SET HEADERS
                 BASE_DIRS ${CMAKE_CURRENT_SOURCE_DIR}/include FILES ${arg_HEADERS})
  target_compile_features(procfix_${name} PUBLIC cxx_std_20)
  procfix_set_warnings(procfix_${name})
endfunction()
