# cmake -DSEEN=<file> -P check_one_start.cmake: every line of SEEN (one per demo test: the pid of
# the shared server it used) names the same server, so the run started exactly one.
if(NOT EXISTS "${SEEN}")
  message(FATAL_ERROR "no demo test recorded a server (${SEEN} is missing)")
endif()
file(STRINGS "${SEEN}" lines)
list(LENGTH lines tests)
set(pids ${lines})
list(REMOVE_DUPLICATES pids)
list(LENGTH pids starts)
message(STATUS "${tests} demo tests used ${starts} shared server start(s): pid(s) ${pids}")
if(NOT starts EQUAL 1)
  message(FATAL_ERROR "expected exactly one server start for the run, saw ${starts}: ${pids}")
endif()
