// sample_child's switches: one table drives both the parser and --help.
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "config.hpp"
#include "detail/help_row.hpp"
#include "detail/signal_names.hpp"

namespace sample_child {
namespace {

using json = nlohmann::json;

constexpr long kMaxMs = 24L * 3600 * 1000;
constexpr long kMaxBytes = 1L << 40;

long parse_number(std::string_view option, std::string_view text, long min, long max) {
  long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < min ||
      value > max) {
    usage_error("option " + std::string{option} + " needs a number from " + std::to_string(min) +
                " to " + std::to_string(max) + ", not '" + std::string{text} + "'");
  }
  return value;
}

int parse_signal(std::string_view text) {
  if (const std::optional<int> signal = procfix::detail::parse_signal(text)) return *signal;
  usage_error("option --signal-before-ready needs a signal number or name, not '" +
              std::string{text} + "'");
}

std::string one_of(std::string_view option, std::string_view value, std::string_view a,
                   std::string_view b) {
  if (value != a && value != b) {
    usage_error("option " + std::string{option} + " needs " + std::string{a} + " or " +
                std::string{b});
  }
  return std::string{value};
}

// One switch: a row of --help and what it sets. `form` is what follows '=' (empty: no value).
struct Switch {
  std::string_view name;
  std::string_view form;
  std::string_view help;  // '\n' separates continuation lines
  // Sets the value; `option` is the switch's name, for messages. Null for --help.
  void (*apply)(Config& config, std::string_view value, std::string_view option);
};

// The common kinds of switch: a flag sets a bool member, a text switch stores its value, a number
// switch parses min..max into the member's type (an integer, an optional one or a duration).
template <auto member>
constexpr Switch flag(std::string_view name, std::string_view help) {
  return {name, "", help, [](Config& c, std::string_view, std::string_view) { c.*member = true; }};
}

template <auto member>
constexpr Switch text(std::string_view name, std::string_view form, std::string_view help) {
  return {name, form, help,
          [](Config& c, std::string_view value, std::string_view) { c.*member = value; }};
}

template <auto member, long min, long max>
constexpr Switch number(std::string_view name, std::string_view form, std::string_view help) {
  return {name, form, help, [](Config& c, std::string_view value, std::string_view option) {
            using Member = std::remove_cvref_t<decltype(c.*member)>;
            c.*member = static_cast<Member>(parse_number(option, value, min, max));
          }};
}

const Switch kServer[] = {
    text<&Config::listen>("--listen", "HOST:PORT",
                          "numeric address to bind; [v6]:PORT for IPv6 (default 127.0.0.1:0)"),
    {"--ipv6", "", "same as --listen=[::1]:0",
     [](Config& c, std::string_view, std::string_view) { c.listen = "[::1]:0"; }},
    flag<&Config::listen_fds>(
        "--listen-fds",
        "socket activation: if LISTEN_FDS=1 and LISTEN_PID is this pid, use\nfd 3 as the bound, "
        "listening socket instead of binding"),
    number<&Config::shutdown_deadline, 0, kMaxMs>("--shutdown-deadline", "MS",
                                                  "drain limit after a stop signal (default 5000)"),
    number<&Config::threads, 1, 64>(
        "--threads", "N", "request workers: threads running the io loop (default 2, 1..64)"),
    {"--help", "", "print this text and exit 0", nullptr},
};

const Switch kDiagnostics[] = {
    flag<&Config::report_fds>(
        "--report-fds", "\"fds\": open fd numbers when main() started (what the spawner passed)"),
    flag<&Config::report_signals>("--report-signals",
                                  "\"sigblk\", \"sigign\": SigBlk and SigIgn of /proc/self/status, "
                                  "read\nwhen main() started (before any signal set-up of "
                                  "sample_child)"),
    {"--report-env", "NAME", "\"env\": {\"NAME\": value or null}; may be repeated",
     [](Config& c, std::string_view v, std::string_view) { c.report_env.emplace_back(v); }},
    {"--extra-json", "JSON", "merge this JSON object into the message",
     [](Config& c, std::string_view v, std::string_view) {
       json extra = json::parse(v, nullptr, /*allow_exceptions=*/false);
       if (!extra.is_object()) usage_error("option --extra-json needs a JSON object");
       c.extra.update(extra);
     }},
};

const Switch kBeforeReady[] = {
    number<&Config::start_delay_ms, 0, kMaxMs>("--start-delay", "MS",
                                               "sleep MS milliseconds first"),
    number<&Config::stderr_lines, 0, kMaxBytes>(
        "--stderr-lines", "N", "write \"sample_child stderr line K\" for K = 1..N to stderr"),
    number<&Config::stderr_bytes, 0, kMaxBytes>("--stderr-bytes", "N",
                                                "write N bytes of text to stderr"),
    number<&Config::stdout_bytes, 0, kMaxBytes>("--stdout-bytes", "N",
                                                "write N bytes of text to stdout"),
    number<&Config::exit_before_ready, 0, 255>("--exit-before-ready", "N",
                                               "exit with status N before readiness"),
    {"--signal-before-ready", "SIG",
     "raise SIG (number, or name like ABRT / SIGABRT) before readiness\n(default action "
     "restored and unblocked first; exits 3 if it survives)",
     [](Config& c, std::string_view v, std::string_view) {
       c.signal_before_ready = parse_signal(v);
     }},
    flag<&Config::fork_holding_ready_fd>(
        "--fork-holding-ready-fd",
        "fork a child that inherits the ready fd and lives until sample_child\nexits (it blocks "
        "reading a pipe only sample_child can write), so EOF\non the ready pipe comes only when "
        "sample_child exits"),
    flag<&Config::notify_from_outside>(
        "--notify-from-outside",
        "a daemonised grandchild (no longer in this server's process tree)\nsends READY=1 to "
        "NOTIFY_SOCKET; sample_child goes on once it has sent\n(tests that the fixture ignores "
        "it)"),
    text<&Config::notify_status>("--notify-status", "TEXT",
                                 "send STATUS=TEXT to NOTIFY_SOCKET (if set)"),
    flag<&Config::leave_zombie>("--leave-zombie",
                                "fork a child that exits at once and is never reaped (it is a "
                                "zombie\nwhen the server is ready)"),
};

const Switch kReadyMessage[] = {
    flag<&Config::never_ready>("--never-ready",
                               "never write the ready message (still stops on SIGTERM)"),
    flag<&Config::close_without_message>("--close-without-message",
                                         "close the ready fd without writing"),
    flag<&Config::malformed_json>("--malformed-json", "write the line {\"address\": oops"),
    flag<&Config::no_address>("--no-address", "write a valid message without \"address\""),
    number<&Config::oversized_message, 1, 1L << 30>(
        "--oversized-message", "BYTES",
        "write one valid JSON line of BYTES bytes plus the newline"),
    {"--ready-line", "stdout|stderr",
     "also print \"sample_child listening on ADDR\" there when ready",
     [](Config& c, std::string_view v, std::string_view) {
       c.ready_line = one_of("--ready-line", v, "stdout", "stderr");
     }},
};

const Switch kAfterReady[] = {
    {"--leak-grandchild", "setsid|daemon",
     "fork a process that closes its fds >= 3, calls setsid() and lives\nforever; \"daemon\" "
     "forks twice and the middle process exits. Its pid\nis printed on stderr: \"sample_child: "
     "leaked pid N\"",
     [](Config& c, std::string_view v, std::string_view) {
       c.leak_grandchild = one_of("--leak-grandchild", v, "setsid", "daemon");
     }},
    flag<&Config::ignore_sigterm>("--ignore-sigterm",
                                  "ignore SIGTERM (SIG_IGN); SIGINT and SIGQUIT still stop it"),
    number<&Config::exit_on_sigterm, 0, 255>("--exit-on-sigterm", "N",
                                             "exit with status N at once on SIGTERM (no drain)"),
    flag<&Config::abort_on_sigterm>("--abort-on-sigterm", "abort() at once on SIGTERM"),
    flag<&Config::abort_mid_request>(
        "--abort-mid-request",
        "abort() as soon as a work or work-ack request is received (after\n\"started\" for "
        "work-ack), leaving that request without its reply"),
    flag<&Config::hang_in_shutdown>(
        "--hang-in-shutdown",
        "on a stop signal, hang past the shutdown deadline and stay hung until\nSIGKILL (a second "
        "signal does not end it either)"),
};

// The sections of --help, in order: a heading and its switches.
struct Section {
  std::string_view heading;
  std::span<const Switch> switches;
};

const Section kSections[] = {
    {"Server:", kServer},
    {"Diagnostics (extra fields in the ready message):", kDiagnostics},
    {"Misbehaviour before readiness (in this order: delay, output, exit/signal, fork,\n"
     "notify-from-outside, notify-status, zombie):",
     kBeforeReady},
    {"Misbehaviour of the ready message (the server keeps running):", kReadyMessage},
    {"Misbehaviour after readiness:", kAfterReady},
};

constexpr std::string_view kIntroduction = R"(usage: sample_child [OPTION]...
A small TCP line server for procfix tests. It reports readiness through PROCFIX_READY_FD and/or
NOTIFY_SOCKET (procfix::notify_ready), with the fields "address", "pid" and "ready_ns"
(CLOCK_MONOTONIC nanoseconds taken just before the write), then serves one request per line:
  ping          -> pong
  echo TEXT     -> TEXT
  pid           -> the server's pid
  work MS       -> done            (after MS milliseconds; timers, so requests run in parallel)
  work-ack MS   -> started, done   ("started" as soon as the request is received)
  spam-stdout N -> spammed         (after writing N bytes to stdout; blocks while the pipe is full)
  spam-stderr N -> spammed         (the same on stderr)
  anything else -> error unknown command: ...
On SIGTERM, SIGINT or SIGQUIT it closes the listening socket (new connections are refused),
sends STOPPING=1 to NOTIFY_SOCKET, finishes every request already received (and closes idle
connections), and exits 0. A second such signal exits at once with 128+signal. If draining
takes longer than the shutdown deadline it exits 1, naming the stuck worker on stderr.
)";

constexpr std::string_view kExitStatus =
    "Exit status: 0 after a clean drain, 1 on failure, 2 on bad usage, N/128+SIG as described "
    "above.\n";

std::string usage_text() {
  constexpr std::size_t kColumn = 29;
  std::string text{kIntroduction};
  for (const Section& section : kSections) {
    text.append("\n").append(section.heading).append("\n");
    for (const Switch& s : section.switches) {
      std::string syntax{s.name};
      if (!s.form.empty()) syntax.append("=").append(s.form);
      text += procfix::detail::help_row(syntax, s.help, kColumn);
    }
  }
  return text + std::string{kExitStatus};
}

// The switch named `name`, or null.
const Switch* find_switch(std::string_view name) {
  for (const Section& section : kSections) {
    for (const Switch& s : section.switches) {
      if (s.name == name) return &s;
    }
  }
  return nullptr;
}

void apply_switch(std::string_view arg, Config& config) {
  const auto equals = arg.find('=');
  const std::string_view name = arg.substr(0, equals);
  const bool has_value = equals != std::string_view::npos;
  const Switch* s = find_switch(name);
  if (s == nullptr) usage_error("unknown option '" + std::string{arg} + "'");
  if (s->form.empty() && has_value) {
    usage_error("option " + std::string{name} + " takes no value");
  }
  if (!s->form.empty() && !has_value) {
    usage_error("option " + std::string{name} + " needs a value (NAME=VALUE)");
  }
  if (s->apply == nullptr) {  // --help
    std::cout << usage_text();
    std::exit(0);
  }
  s->apply(config, has_value ? arg.substr(equals + 1) : std::string_view{}, s->name);
}

}  // namespace

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "sample_child: " << message << "\nTry 'sample_child --help'.\n";
  std::exit(2);
}

Config parse_arguments(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; ++i) apply_switch(argv[i], config);
  return config;
}

}  // namespace sample_child
