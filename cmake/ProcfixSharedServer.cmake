# One server for a whole ctest run (docs/shared-servers.md).
#
#   procfix_add_shared_server(NAME <name> COMMAND <exe> [<arg>...]
#     [READY fd|notify[:ADDR]|line:REGEX|socket[:ADDR]|listen[:N|:ADDR]|fdline:FD:REGEX]
#     [READY_TIMEOUT <ms>] [ENV <NAME=VALUE>...] [STOP_SIGNAL <sig>] [STOP_GRACE <ms>]
#     [EXPECT_EXIT <n|signal:SIG|any>] [USER <user>] [WORKING_DIRECTORY <dir>] [LOG_DIR <dir>]
#     [MAX_LIFETIME <ms>]              # upper bound on the server's life (default 3600000)
#     [STATE_FILE <path>]              # default ${CMAKE_CURRENT_BINARY_DIR}/procfix-shared/<name>.json
#     [LABELS <label>...])             # also given to the setup and cleanup tests
#
# or, with the options defined once in the test binary's C++ instead:
#
#   procfix_add_shared_server(NAME <name> FROM_TEST_BINARY <target or path>
#     [OPTIONS_TIMEOUT <ms>]           # bound on running the binary for its options (default 30000)
#     [MAX_LIFETIME <ms>]
#     [STATE_FILE <path>]              # default ${CMAKE_CURRENT_BINARY_DIR}/procfix-shared/<name>.json
#     [LABELS <label>...])             # also given to the setup and cleanup tests
#
# Its setup test runs `procfix-run --detach --options-from=<binary>:<name>`: procfix-run runs the
# binary with PROCFIX_DESCRIBE_SERVER=<name>, and the binary's procfix::add_global_server() call
# whose options have that name prints them (every field, as JSON) and exits without running a
# test. No server option may then be given here (the options must not be written twice).
#
# Either form adds the tests <name>.setup (FIXTURES_SETUP <name>: `procfix-run --detach`, owned by
# ctest, the setup test's parent) and <name>.cleanup (FIXTURES_CLEANUP <name>: `procfix-run
# --stop`, which fails with the StopReport and the server's stderr tail if the server misbehaved),
# and sets
# PROCFIX_SHARED_<NAME>_STATE_FILE and PROCFIX_SHARED_<NAME>_PROPERTIES in the caller's scope.
#
#   procfix_require_shared_server(<name> TESTS <test>...)
#
# marks add_test() tests as needing it: FIXTURES_REQUIRED <name> and the environment variable
# PROCFIX_SHARED_<NAME>=<state file>, where procfix::add_global_server() finds it. For
# gtest_discover_tests():
#
#   gtest_discover_tests(my_tests PROPERTIES ${PROCFIX_SHARED_<NAME>_PROPERTIES})
#
# <NAME> is <name> upper-cased, every character other than a letter or digit turned into '_'.

function(_procfix_shared_variable name out)
  string(TOUPPER "${name}" upper)
  string(REGEX REPLACE "[^A-Z0-9]" "_" upper "${upper}")
  set(${out} "PROCFIX_SHARED_${upper}" PARENT_SCOPE)
endfunction()

# `text` as one word of a POSIX shell script: in single quotes, each ' written as '\''.
function(_procfix_shell_word text out)
  string(REPLACE "'" "'\\''" text "${text}")
  set(${out} "'${text}'" PARENT_SCOPE)
endfunction()

function(procfix_add_shared_server)
  cmake_parse_arguments(arg ""
    "NAME;READY;READY_TIMEOUT;STOP_SIGNAL;STOP_GRACE;EXPECT_EXIT;USER;WORKING_DIRECTORY;LOG_DIR;MAX_LIFETIME;STATE_FILE;FROM_TEST_BINARY;OPTIONS_TIMEOUT"
    "COMMAND;ENV;LABELS" ${ARGN})
  if(NOT arg_NAME OR (NOT arg_COMMAND AND NOT arg_FROM_TEST_BINARY))
    message(FATAL_ERROR "procfix_add_shared_server: NAME and COMMAND (or FROM_TEST_BINARY) are "
                        "required")
  endif()
  if(arg_FROM_TEST_BINARY)
    set(server_keys COMMAND READY READY_TIMEOUT ENV STOP_SIGNAL STOP_GRACE EXPECT_EXIT USER
                    WORKING_DIRECTORY LOG_DIR)
    foreach(key IN LISTS server_keys)
      if(DEFINED arg_${key})
        message(FATAL_ERROR "procfix_add_shared_server(${arg_NAME}): FROM_TEST_BINARY takes every "
                            "server option from the binary's C++; ${key} cannot be given with it")
      endif()
    endforeach()
  elseif(DEFINED arg_OPTIONS_TIMEOUT)
    message(FATAL_ERROR "procfix_add_shared_server(${arg_NAME}): OPTIONS_TIMEOUT needs "
                        "FROM_TEST_BINARY")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "procfix_add_shared_server(${arg_NAME}): unknown arguments: "
                        "${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET procfix::procfix-run)
    message(FATAL_ERROR "procfix_add_shared_server: no target procfix::procfix-run "
                        "(find_package(procfix) or add_subdirectory(procfix) first)")
  endif()
  if(NOT arg_STATE_FILE)
    set(arg_STATE_FILE "${CMAKE_CURRENT_BINARY_DIR}/procfix-shared/${arg_NAME}.json")
  endif()
  if(NOT arg_MAX_LIFETIME)
    set(arg_MAX_LIFETIME 3600000)
  endif()
  set(options --name=${arg_NAME})
  foreach(pair READY:--ready READY_TIMEOUT:--ready-timeout STOP_SIGNAL:--stop-signal
               STOP_GRACE:--stop-grace EXPECT_EXIT:--expect-exit USER:--user
               WORKING_DIRECTORY:--cwd LOG_DIR:--log-dir)
    string(REPLACE ":" ";" pair "${pair}")
    list(GET pair 0 key)
    list(GET pair 1 switch)
    if(DEFINED arg_${key})
      list(APPEND options "${switch}=${arg_${key}}")
    endif()
  endforeach()
  foreach(variable IN LISTS arg_ENV)
    list(APPEND options "--env=${variable}")
  endforeach()
  if(arg_FROM_TEST_BINARY)
    set(binary "${arg_FROM_TEST_BINARY}")
    if(TARGET ${binary})
      set(binary "$<TARGET_FILE:${binary}>")
    endif()
    set(server --options-from=${binary}:${arg_NAME})
    if(DEFINED arg_OPTIONS_TIMEOUT)
      list(APPEND server --options-from-timeout=${arg_OPTIONS_TIMEOUT})
    endif()
  else()
    list(GET arg_COMMAND 0 command)
    list(REMOVE_AT arg_COMMAND 0)
    if(TARGET ${command})
      set(command "$<TARGET_FILE:${command}>")
    endif()
    set(server ${options} -- ${command} ${arg_COMMAND})
  endif()

  set(run "$<TARGET_FILE:procfix::procfix-run>")
  add_test(NAME ${arg_NAME}.setup
           COMMAND ${run} --detach --state=${arg_STATE_FILE} --owner-pid=parent
                   --max-lifetime=${arg_MAX_LIFETIME} ${server})
  add_test(NAME ${arg_NAME}.cleanup
           COMMAND ${run} --stop --state=${arg_STATE_FILE} --owner-pid=parent)
  set_tests_properties(${arg_NAME}.setup PROPERTIES FIXTURES_SETUP ${arg_NAME})
  set_tests_properties(${arg_NAME}.cleanup PROPERTIES FIXTURES_CLEANUP ${arg_NAME})
  if(arg_LABELS)
    set_tests_properties(${arg_NAME}.setup ${arg_NAME}.cleanup PROPERTIES LABELS "${arg_LABELS}")
  endif()

  _procfix_shared_variable(${arg_NAME} variable)
  # Two names that give one variable (my-db, my_db) would share it silently: the second one's
  # tests would find the first one's server.
  get_property(taken GLOBAL PROPERTY _procfix_shared_variable_${variable})
  if(taken AND NOT taken STREQUAL arg_NAME)
    message(FATAL_ERROR "procfix_add_shared_server(${arg_NAME}): its variable ${variable} is "
                        "already the one of shared server '${taken}'; choose names that differ "
                        "in more than case and punctuation")
  endif()
  set_property(GLOBAL PROPERTY _procfix_shared_variable_${variable} "${arg_NAME}")
  # The same definition outside ctest (a debugger, --gtest_filter), from the build tree:
  #   eval "$(sh <state file without .json>.sh start)"; gdb ./my_tests; sh <...>.sh stop
  # starts it (bounded by MAX_LIFETIME; no owner) and prints the export of PROCFIX_SHARED_<NAME>.
  string(REGEX REPLACE "\\.json$" "" script "${arg_STATE_FILE}")
  # Every word single-quoted, so that no argument (a quote, a space, a '$') is changed.
  set(quoted "")
  foreach(word IN LISTS server)
    _procfix_shell_word("${word}" word)
    string(APPEND quoted " ${word}")
  endforeach()
  _procfix_shell_word("--state=${arg_STATE_FILE}" state_word)
  # What `start` prints is eval'ed: the path quoted as a word there too.
  _procfix_shell_word("${arg_STATE_FILE}" state_value)
  _procfix_shell_word("${state_value}" state_value)
  file(GENERATE OUTPUT "${script}.sh"
       CONTENT "#!/bin/sh
# Generated by procfix_add_shared_server(NAME ${arg_NAME}): start | stop the shared server.
set -e
case \"\$1\" in
  start) '${run}' --detach ${state_word} --max-lifetime=${arg_MAX_LIFETIME} \\
          ${quoted} >&2
         printf 'export ${variable}=%s\\n' ${state_value} ;;
  stop) exec '${run}' --stop ${state_word} ;;
  *) echo \"usage: \$0 start|stop\" >&2; exit 2 ;;
esac
")
  set_property(DIRECTORY APPEND PROPERTY _procfix_shared_servers ${arg_NAME})
  set_property(DIRECTORY PROPERTY _procfix_shared_${arg_NAME}_state "${arg_STATE_FILE}")
  set(${variable}_STATE_FILE "${arg_STATE_FILE}" PARENT_SCOPE)
  set(${variable}_PROPERTIES FIXTURES_REQUIRED ${arg_NAME}
                             ENVIRONMENT "${variable}=${arg_STATE_FILE}" PARENT_SCOPE)
endfunction()

function(procfix_require_shared_server name)
  cmake_parse_arguments(arg "" "" "TESTS" ${ARGN})
  get_property(state DIRECTORY PROPERTY _procfix_shared_${name}_state)
  if(NOT state)
    message(FATAL_ERROR "procfix_require_shared_server: no shared server '${name}' in this "
                        "directory (call procfix_add_shared_server(NAME ${name} ...) first)")
  endif()
  _procfix_shared_variable(${name} variable)
  foreach(test IN LISTS arg_TESTS)
    set_property(TEST ${test} APPEND PROPERTY FIXTURES_REQUIRED ${name})
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT "${variable}=${state}")
  endforeach()
endfunction()
