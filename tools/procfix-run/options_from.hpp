// procfix-run --options-from=BINARY:NAME: the server's options from a test binary's C++
// (docs/shared-servers.md, "One definition"). BINARY is run with PROCFIX_DESCRIBE_SERVER=NAME
// (and GTEST_FILTER=-*, so that a binary that does not answer runs no test), its
// procfix::add_global_server() for NAME prints the ServerOptions as one JSON line on stdout and
// exits 0, and that line is decoded (fixtures/src/detail/options_json.hpp).
#pragma once

#include <chrono>
#include <string>

#include "procfix/fixtures/options.hpp"

namespace procfix::run {

// The default bound on one run of BINARY (it only catches a hang: a binary answers in
// milliseconds).
inline constexpr std::chrono::milliseconds kOptionsFromTimeout{30'000};

// Runs `binary` as above (stdin /dev/null, its own process group, every process of which is
// killed when it ends) and returns the options it prints for `name`. Blocks at most `timeout`
// (then SIGKILLs the group). Throws UsageError naming the binary, the name and what went wrong:
// it could not be run, it crashed or exited with another status than 0 (with its stderr tail),
// it printed nothing or no options JSON as its last line, the options are not valid (an unknown
// field, a wrong type), or it did not finish within `timeout`.
ServerOptions options_from_binary(const std::string& binary, const std::string& name,
                                  std::chrono::milliseconds timeout = kOptionsFromTimeout);

}  // namespace procfix::run
