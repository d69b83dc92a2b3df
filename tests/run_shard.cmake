# Runs part INDEX of COUNT of the GoogleTest binary BINARY in one process (the sanitizer builds'
# ctest entries: tests/CMakeLists.txt). The tests are dealt out by position in
# `--gtest_list_tests` order and selected with --gtest_filter, not GTEST_SHARD_INDEX: the tests'
# own child processes (the test binary re-executed, ctest on a generated project) would inherit
# that variable and run a shard of their own.
#   cmake -DBINARY=<path> -DINDEX=<i> -DCOUNT=<n> -P run_shard.cmake
execute_process(COMMAND ${BINARY} --gtest_list_tests
                OUTPUT_VARIABLE listing RESULT_VARIABLE listed)
if(NOT listed EQUAL 0)
  message(FATAL_ERROR "${BINARY} --gtest_list_tests failed (${listed})")
endif()
string(REPLACE "\n" ";" lines "${listing}")
set(suite "")
set(position 0)
set(selected "")
foreach(line IN LISTS lines)
  if(line MATCHES "^([^ #][^ ]*)\\.")
    set(suite "${CMAKE_MATCH_1}")
  elseif(line MATCHES "^  ([^ #]+)")
    set(test "${CMAKE_MATCH_1}")
    if(NOT test MATCHES "^DISABLED_" AND NOT suite MATCHES "^DISABLED_")
      math(EXPR part "${position} % ${COUNT}")
      if(part EQUAL INDEX)
        list(APPEND selected "${suite}.${test}")
      endif()
      math(EXPR position "${position} + 1")
    endif()
  endif()
endforeach()
if(NOT selected)
  message(STATUS "part ${INDEX} of ${COUNT} of ${BINARY}: no tests")
  return()
endif()
string(REPLACE ";" ":" filter "${selected}")
execute_process(COMMAND ${BINARY} --gtest_filter=${filter} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "part ${INDEX} of ${COUNT} of ${BINARY} failed (${status})")
endif()
