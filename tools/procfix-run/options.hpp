// procfix-run's command line: one table of switches drives the parser, --help and the naming of
// the fixtures' option errors (options.cpp).
#pragma once

#include <stdexcept>
#include <string>

#include "procfix/fixtures/errors.hpp"
#include "procfix/fixtures/options.hpp"

namespace procfix::run {

// A bad command line; what() names the option. procfix-run exits 2 with it.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommandLine {
  procfix::ServerOptions server;
  // --options-from=BINARY:NAME (empty: not given); `server` then comes from BINARY.
  std::string options_from{};
  std::chrono::milliseconds options_from_timeout = std::chrono::seconds{30};
  bool help = false;  // --help was given: print help_text() and exit 0 (nothing else is checked)
};

// Parses argv (argv[0] is skipped). Throws UsageError.
CommandLine parse_command_line(int argc, char** argv);

// The --help text, generated from the table of switches.
std::string help_text();

// The fixtures' OptionsError names a ServerOptions field (field() ".ready_timeout"); this says
// the same (its problem()) of the command-line option that set the field ("--ready-timeout"),
// found in the same table. A field no switch sets is named as the fixtures name it.
std::string with_option_names(const OptionsError& error);

// What a duration option maps "inf" (and any value from 100 years up) to: the library's "no
// limit" (its deadlines saturate).
inline constexpr std::chrono::milliseconds kNoLimit = std::chrono::milliseconds::max();
inline constexpr std::uint64_t kNoLimitFromMs = 1000ULL * 3600 * 24 * 365 * 100;

}  // namespace procfix::run
