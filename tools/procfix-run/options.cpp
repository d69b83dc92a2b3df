#include "options.hpp"

#include "detail/help_row.hpp"
#include "detail/signal_names.hpp"
#include "options_from.hpp"

#include <signal.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace procfix::run {
namespace {

using std::chrono::milliseconds;

// One form of one switch: a row of --help and a way to apply it. Several rows may share a name
// (--ready=fd, --ready=line:REGEX, ...): the parser tries them in order and the first whose
// `apply` accepts the value wins.
struct Switch {
  std::string_view section;  // the --help heading the row belongs under
  std::string_view name;     // "--ready-timeout"
  std::string_view form;     // what follows '=' ("MS", "line:REGEX"); empty: takes no value
  std::string_view help;     // '\n' separates continuation lines
  // Applies the value; false if the value is not of this row's form (another row may take it).
  // Throws UsageError for a value of this form that is bad.
  // `option` is the switch's name, for messages.
  bool (*apply)(std::string_view value, CommandLine& line, std::string_view option);
  // The ServerOptions field as the fixtures' OptionsError::field() names it, and how to show it
  // instead (empty: the switch's name). Both empty if the switch sets no field the fixtures check.
  std::string_view field = {};
  std::string_view field_as = {};
};

[[noreturn]] void reject(std::string message) {
  throw UsageError{std::move(message)};
}

bool all_digits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// A decimal number from `min` to `max`; anything else is rejected with one message form,
// "OPTION needs a number from MIN to MAX[ (why)], not 'TEXT'".
std::uint64_t parse_count(std::string_view option, std::string_view text, std::uint64_t max,
                          std::uint64_t min = 0, std::string_view why = {}) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (!all_digits(text) || ec != std::errc{} || end != text.data() + text.size() || value > max ||
      value < min) {
    reject(std::string{option} + " needs a number from " + std::to_string(min) + " to " +
           std::to_string(max) + (why.empty() ? "" : " (" + std::string{why} + ")") + ", not '" +
           std::string{text} + "'");
  }
  return value;
}

// Milliseconds, or "inf". Saturates: "inf" and anything from 100 years up (even beyond 64 bits)
// mean no limit.
milliseconds parse_duration(std::string_view option, std::string_view text) {
  if (text == "inf") return kNoLimit;
  if (!all_digits(text)) {
    reject(std::string{option} + " needs a non-negative number of milliseconds or inf, not '" +
           std::string{text} + "'");
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range || value >= kNoLimitFromMs) {
    return kNoLimit;
  }
  return milliseconds{static_cast<milliseconds::rep>(value)};
}

// A signal number (1..NSIG-1) or name ("TERM", "SIGTERM").
int parse_signal_number(std::string_view option, std::string_view text) {
  if (const std::optional<int> signal = detail::parse_signal(text)) return *signal;
  reject(std::string{option} + ": '" + std::string{text} + "' is not a signal");
}

// The value after "prefix:", or `fallback` for the bare word.
std::string after_colon(std::string_view value, std::string_view word, std::string_view fallback) {
  return value == word ? std::string{fallback} : std::string{value.substr(word.size() + 1)};
}

bool is_word(std::string_view value, std::string_view word) {
  return value == word ||
         (value.starts_with(word) && value.size() > word.size() && value[word.size()] == ':');
}

// The apply functions of switches that set one field: to the value as it is, as a duration, as
// a signal.
template <auto field>
bool set_text(std::string_view value, CommandLine& line, std::string_view) {
  line.server.*field = std::string{value};
  return true;
}

template <auto field>
bool set_duration(std::string_view value, CommandLine& line, std::string_view option) {
  line.server.*field = parse_duration(option, value);
  return true;
}

template <auto field>
bool set_signal(std::string_view value, CommandLine& line, std::string_view option) {
  line.server.*field = parse_signal_number(option, value);
  return true;
}

// The apply function of the --ready=WORD[:ADDR] rows: the readiness make(ADDR), or make(fallback)
// for the bare WORD; false if the value is not of that form.
bool set_word_readiness(std::string_view value, CommandLine& line, std::string_view word,
                        std::string_view fallback, Readiness (*make)(std::string address)) {
  if (!is_word(value, word)) return false;
  line.server.readiness = make(after_colon(value, word, fallback));
  return true;
}

constexpr std::string_view kReadiness = "Readiness (default: --ready=fd):";
constexpr std::string_view kStopping = "Stopping:";
constexpr std::string_view kProcess = "Process:";
constexpr std::string_view kOther = "";

const Switch kSwitches[] = {
    {kReadiness, "--ready", "fd", "the procfix protocol: one JSON line on PROCFIX_READY_FD",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (v != "fd") return false;
       l.server.readiness = Readiness::ready_fd();
       return true;
     }},
    {kReadiness, "--ready", "notify[:ADDR]",
     "systemd NOTIFY_SOCKET, READY=1; ADDR is the endpoint to print",
     [](std::string_view v, CommandLine& l, std::string_view) {
       return set_word_readiness(v, l, "notify", "", Readiness::notify_socket<std::string>);
     },
     ".readiness notify_socket address", "--ready=notify:ADDR"},
    {kReadiness, "--ready", "line:REGEX",
     "first stdout/stderr line matching REGEX; group 1 is the address",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (!v.starts_with("line:")) return false;
       l.server.readiness = Readiness::output_line(std::string{v.substr(5)});
       return true;
     },
     ".readiness output_line pattern", "--ready=line: pattern"},
    {kReadiness, "--ready", "socket[:ADDR]",
     "socket activation: bind ADDR (default 127.0.0.1:0), pass it as fd 3",
     [](std::string_view v, CommandLine& l, std::string_view) {
       return set_word_readiness(v, l, "socket", "127.0.0.1:0", [](std::string address) {
         return Readiness::socket_activation(std::move(address));
       });
     },
     ".readiness socket_activation bind_address", "--ready=socket:ADDR"},
    {kReadiness, "--ready", "listen[:N|:ADDR]",
     "ready at the server's Nth listen() (default 1), or its listen() on ADDR;\n"
     "the endpoint is the address it listens on (needs seccomp user notification)",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (!is_word(v, "listen")) return false;
       const std::string rest = after_colon(v, "listen", "1");
       if (all_digits(rest)) {
         const std::uint64_t count = parse_count("--ready=listen:N", rest, 64, 1);
         l.server.readiness = Readiness::listen({.count = static_cast<int>(count)});
       } else {
         l.server.readiness = Readiness::listen({.address = rest});
       }
       return true;
     },
     ".readiness listen address", "--ready=listen:ADDR"},
    {kReadiness, "--ready", "fdline:FD:REGEX",
     "first line on inherited fd FD (>= 3) matching REGEX (empty: any line);\ngroup 1 is the "
     "address (Xvfb -displayfd FD, dbus-daemon --print-address=FD)",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (!v.starts_with("fdline:")) return false;
       v.remove_prefix(7);
       const std::size_t colon = v.find(':');
       if (colon == std::string_view::npos)
         reject("--ready=fdline: needs FD:REGEX, e.g. fdline:3:");
       const std::uint64_t fd = parse_count("--ready=fdline: FD", v.substr(0, colon), 1 << 20, 3,
                                            "0, 1, 2 are stdin, stdout, stderr");
       l.server.readiness =
           Readiness::fd_line(std::string{v.substr(colon + 1)}, static_cast<int>(fd));
       return true;
     },
     ".readiness fd_line pattern", "--ready=fdline: pattern"},
    {kReadiness, "--ready-timeout", "MS",
     "deadline for readiness (default 10000); inf: no limit\n(so are values of 100 years or more)",
     set_duration<&ServerOptions::ready_timeout>, ".ready_timeout"},
    {kStopping, "--stop-signal", "SIG", "number or name (default TERM)",
     set_signal<&ServerOptions::stop_signal>, ".stop_signal"},
    {kStopping, "--stop-grace", "MS",
     "wait before SIGKILL (default 5000); inf: no limit\n(so are values of 100 years or more)",
     set_duration<&ServerOptions::stop_grace>, ".stop_grace"},
    {kStopping, "--expect-exit", "N", "the exit status that counts as clean (default 0)",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (v.empty() || v.front() < '0' || v.front() > '9') return false;
       l.server.expected_exit =
           ExpectedExit::status(static_cast<int>(parse_count("--expect-exit", v, 255)));
       return true;
     }},
    {kStopping, "--expect-exit", "signal:SIG", "being killed by SIG counts as clean",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (!v.starts_with("signal:")) return false;
       l.server.expected_exit =
           ExpectedExit::signal(parse_signal_number("--expect-exit", v.substr(7)));
       return true;
     }},
    {kStopping, "--expect-exit", "any", "any ending counts as clean",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (v != "any") return false;
       l.server.expected_exit = ExpectedExit::anything();
       return true;
     }},
    {kProcess, "--user", "NAME", "run the server as NAME (procfix-run must be root)",
     set_text<&ServerOptions::user>, ".user"},
    {kProcess, "--cwd", "DIR", "working directory of the server",
     set_text<&ServerOptions::working_directory>, ".working_directory"},
    {kProcess, "--env", "NAME=VALUE", "add to the server's environment (repeatable)",
     [](std::string_view v, CommandLine& l, std::string_view) {
       const std::size_t inner = v.find('=');
       if (inner == std::string_view::npos || inner == 0) {
         reject("--env needs NAME=VALUE, not '" + std::string{v} + "'");
       }
       l.server.env[std::string{v.substr(0, inner)}] = v.substr(inner + 1);
       return true;
     },
     ".env"},
    {kProcess, "--unset-env", "NAME",
     "remove NAME from the environment the server inherits\n(repeatable)",
     [](std::string_view v, CommandLine& l, std::string_view) {
       if (v.empty()) reject("--unset-env needs a variable name");
       l.server.unset_env.emplace_back(v);
       return true;
     },
     ".unset_env"},
    {kProcess, "--log-dir", "DIR", "also write the server's stdout/stderr to files in DIR",
     set_text<&ServerOptions::log_directory>, ".log_directory"},
    {kProcess, "--name", "NAME", "name in messages (default: the server's file name)",
     set_text<&ServerOptions::name>},
    {kOther, "--options-from", "BINARY:NAME",
     "every server option (and SERVER) from the test binary BINARY: it is run\n"
     "with PROCFIX_DESCRIBE_SERVER=NAME and prints the options its\n"
     "procfix::add_global_server() call for NAME has; no other server option\n"
     "and no -- SERVER may be given with it",
     [](std::string_view v, CommandLine& l, std::string_view) {
       const std::size_t colon = v.rfind(':');
       if (colon == std::string_view::npos || colon == 0 || colon + 1 == v.size()) {
         reject("--options-from needs BINARY:NAME, not '" + std::string{v} + "'");
       }
       l.options_from = v;
       return true;
     }},
    {kOther, "--options-from-timeout", "MS",
     "bound on the run of --options-from's BINARY (default 30000)",
     [](std::string_view v, CommandLine& l, std::string_view) {
       l.options_from_timeout = parse_duration("--options-from-timeout", v);
       return true;
     }},
    {kOther, "--help", "", "this text",
     [](std::string_view, CommandLine& l, std::string_view) {
       l.help = true;
       return true;
     }},
};

constexpr std::string_view kIntroduction = R"(usage: procfix-run [OPTION]... -- SERVER [ARG]...
Starts SERVER, waits until it is ready, prints ONE JSON line on stdout:
  {"ready":true,"pid":N,"address":"127.0.0.1:43121","message":{...readiness message...}}
then waits until its standard input reaches EOF, it receives SIGTERM or SIGINT, or the server
exits by itself. (Started with stdin closed, not at EOF, it has no EOF to watch: only a signal
or the server's exit ends the wait.) It then stops the server (stop signal, grace, SIGKILL;
leaked processes are killed and reaped) and prints ONE JSON line:
  {"stopped":true,"ok":true,"cause":"stdin EOF","pid":N,"exit":{"status":0},
   "needed_kill":false,"exited_before_stop":false,"stop_ms":1.2,
   "leaks":[{"pid":N,"command_line":"..."}]}
Nothing else is ever written to stdout; bytes that are not UTF-8 (in a readiness message, an
output line, a command line) are printed as U+FFFD. SIGTERM or SIGINT while the server is
not ready yet kills it at once (exit status 3, "interrupted ... while waiting for readiness").
When procfix-run exits, nothing it started is still running; if it is killed (even with
SIGKILL), nothing it started survives.
)";

constexpr std::string_view kExitStatus = R"(
Exit status: 0 the server started, ran and stopped cleanly; 1 it misbehaved (needed SIGKILL,
unexpected exit status, died before the stop, leaked processes); 2 bad usage; 3 it did not
start, or SIGTERM/SIGINT came before it was ready (the reason, with the tail of its stderr, is
on stderr).
)";

std::string syntax(const Switch& s) {
  return s.form.empty() ? std::string{s.name} : std::string{s.name}.append("=").append(s.form);
}

// "fd, notify[:ADDR], line:REGEX or socket[:ADDR]"
std::string forms_of(std::string_view name) {
  std::vector<std::string_view> forms;
  for (const Switch& s : kSwitches) {
    if (s.name == name) forms.push_back(s.form);
  }
  std::string text;
  for (std::size_t i = 0; i < forms.size(); ++i) {
    if (i > 0) text += i + 1 == forms.size() ? " or " : ", ";
    text += forms[i];
  }
  return text;
}

void apply_switch(std::string_view arg, CommandLine& line) {
  const std::size_t equals = arg.find('=');
  const std::string_view name = arg.substr(0, equals);
  const bool has_value = equals != std::string_view::npos;
  const std::string_view value = has_value ? arg.substr(equals + 1) : std::string_view{};
  bool known = false;
  for (const Switch& s : kSwitches) {
    if (s.name != name) continue;
    known = true;
    if (s.form.empty() != !has_value) continue;
    if (s.apply(value, line, s.name)) return;
  }
  if (!known) reject("unknown option '" + std::string{has_value ? name : arg} + "'");
  if (!has_value)
    reject(std::string{name} + " needs a value: " + std::string{name} + "=" + forms_of(name));
  if (forms_of(name).empty()) reject(std::string{name} + " takes no value");
  reject(std::string{name} + " takes " + forms_of(name) + ", not '" + std::string{value} + "'");
}

}  // namespace

CommandLine parse_command_line(int argc, char** argv) {
  CommandLine line;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (!arg.starts_with("--")) reject("unknown option '" + std::string{arg} + "'");
    apply_switch(arg, line);
    if (line.help) return line;
  }
  if (!line.options_from.empty()) {  // options_from.cpp
    for (int j = 1; j < argc; ++j) {
      const std::string_view arg = argv[j];
      if (arg.starts_with("--options-from=") || arg.starts_with("--options-from-timeout="))
        continue;
      if (arg == "--") reject("--options-from gives SERVER too: nothing may follow '--'");
      reject("--options-from takes every server option from the test binary; '" + std::string{arg} +
             "' cannot be given with it");
    }
    const std::size_t colon = line.options_from.rfind(':');
    line.server =
        options_from_binary(line.options_from.substr(0, colon), line.options_from.substr(colon + 1),
                            line.options_from_timeout);
    return line;
  }
  if (i >= argc) reject("no server given: procfix-run [OPTION]... -- SERVER [ARG]...");
  line.server.executable = argv[i];
  for (++i; i < argc; ++i) line.server.args.emplace_back(argv[i]);
  return line;
}

std::string help_text() {
  constexpr std::size_t kColumn = 27;
  std::string text{kIntroduction};
  std::string_view section = "(none)";
  for (const Switch& s : kSwitches) {
    if (s.section != section) {
      section = s.section;
      text += "\n";
      if (!section.empty()) text += std::string{section} + "\n";
    }
    text += detail::help_row(syntax(s), s.help, kColumn);
  }
  return text + std::string{kExitStatus};
}

std::string with_option_names(const OptionsError& error) {
  if (error.field() == ".executable") return "SERVER" + error.problem();
  for (const Switch& s : kSwitches) {
    if (!s.field.empty() && s.field == error.field()) {
      return std::string{s.field_as.empty() ? s.name : s.field_as} + error.problem();
    }
  }
  return error.field() + error.problem();
}

}  // namespace procfix::run
