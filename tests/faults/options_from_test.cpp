// The fault matrix for `procfix-run --options-from=BINARY:NAME` (issue 12, "one definition":
// docs/shared-servers.md): a shared server's options read from the test binary's C++. The
// binary is children/describing_tests (a real GoogleTest binary with add_global_server()), whose
// misbehaviours are picked by the NAME asked for. Every run bounded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bounded_run.hpp"
#include "detail/options_json.hpp"
#include "fault_support.hpp"
#include "procfix/fixtures/errors.hpp"

namespace {

using nlohmann::json;
using procfix::testing::BoundedRun;
using procfix::testing::fault_child;
using procfix::testing::survivors_with;
using procfix::testing::unique_token;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = fault_child("describing_tests");

// A fresh directory for state files, removed at the end.
class OptionsFromStateDir : public procfix::testing::StateDir {
 public:
  OptionsFromStateDir() : procfix::testing::StateDir{"procfix-options-from"} {}
};

BoundedRun run_cli(std::vector<std::string> args) {
  return procfix::testing::run_procfix_run(std::move(args));
}

// `procfix-run --detach --options-from=describing_tests:NAME`, as a setup test runs it.
BoundedRun detach_from(const OptionsFromStateDir& dir, const std::string& name,
                       std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--detach", "--state=" + dir.file(),
                                   "--options-from=" + kBinary + ":" + name};
  args.insert(args.end(), more.begin(), more.end());
  return run_cli(std::move(args));
}

json round_trip(const procfix::ServerOptions& options) {
  const json written = procfix::detail::options_to_json(options);
  return procfix::detail::options_to_json(
      procfix::detail::options_from_json(json::parse(written.dump())));
}

// The codec writes every field, and reads back what it wrote, in each readiness mode.
TEST(FaultOptionsFrom, EveryFieldAndEveryReadinessModeSurviveTheRoundTrip) {
  procfix::ServerOptions options{
      .executable = "/usr/bin/server",
      .args = {"--a", "b c", ""},
      .name = "pg",
      .env = {{"A", "1"}, {"EMPTY", ""}},
      .unset_env = {"PYTHONUNBUFFERED"},
      .working_directory = "/srv",
      .ready_timeout = std::chrono::milliseconds::max(),
      .stop_signal = SIGINT,
      .stop_grace = 1234ms,
      .expected_exit = procfix::ExpectedExit::signal(SIGTERM),
      .user = "procfix-test",
      .log_directory = "/var/log/x",
      .output_tail_bytes = 99,
  };
  const json written = procfix::detail::options_to_json(options);
  EXPECT_EQ(written.at("procfix_server_options"), 1);
  EXPECT_EQ(written.at("ready_timeout_ms"), "inf");
  EXPECT_EQ(written.at("stop_grace_ms"), 1234);
  EXPECT_EQ(written.at("expected_exit"), json({{"signal", SIGTERM}}));
  EXPECT_EQ(written.at("env"), json({{"A", "1"}, {"EMPTY", ""}}));
  EXPECT_EQ(written.size(), 15u) << written.dump();  // 14 fields and the version
  const procfix::ServerOptions read =
      procfix::detail::options_from_json(json::parse(written.dump()));
  EXPECT_EQ(read.executable, "/usr/bin/server");
  EXPECT_EQ(read.args, options.args);
  EXPECT_EQ(read.env, options.env);
  EXPECT_EQ(read.unset_env, options.unset_env);
  EXPECT_EQ(read.working_directory, "/srv");
  EXPECT_EQ(read.ready_timeout, std::chrono::milliseconds::max());
  EXPECT_EQ(read.stop_signal, SIGINT);
  EXPECT_EQ(read.stop_grace, 1234ms);
  EXPECT_EQ(read.expected_exit, procfix::ExpectedExit::signal(SIGTERM));
  EXPECT_EQ(read.user, "procfix-test");
  EXPECT_EQ(read.log_directory, "/var/log/x");
  EXPECT_EQ(read.output_tail_bytes, 99u);

  using procfix::Readiness;
  const Readiness modes[] = {
      Readiness::ready_fd({.fd = 7, .require_address = false}),
      Readiness::notify_socket({.address = "/tmp/s", .max_ready_timeout = 9s}),
      Readiness::output_line("port (\\d+)", "x", Readiness::Stream::stderr_only),
      Readiness::socket_activation("[::1]:0", "web"),
      Readiness::listen({.count = 3}),
      Readiness::listen({.address = "127.0.0.1:8080"}),
      Readiness::fd_line({.pattern = "^(.*)$", .fd = 4, .address = "a"}),
  };
  for (const Readiness& mode : modes) {
    options.readiness = mode;
    const json once = procfix::detail::options_to_json(options);
    EXPECT_EQ(round_trip(options), once) << once.dump();
    EXPECT_EQ(procfix::detail::options_from_json(once).readiness.mode(), mode.mode());
  }
  for (const auto& expected : {procfix::ExpectedExit::success(), procfix::ExpectedExit::status(3),
                               procfix::ExpectedExit::anything()}) {
    options.expected_exit = expected;
    EXPECT_EQ(
        procfix::detail::options_from_json(procfix::detail::options_to_json(options)).expected_exit,
        expected);
  }
}

void expect_rejected(const json& input, const std::string& words) {
  try {
    (void)procfix::detail::options_from_json(input);
    ADD_FAILURE() << "accepted: " << input.dump();
  } catch (const procfix::OptionsError& e) {
    EXPECT_THAT(e.what(), HasSubstr(words)) << input.dump();
  }
}

// What another writer (a newer procfix, a hand-written file) gives is never dropped silently:
// unknown fields, wrong types, an unknown mode or a missing version are errors naming them.
TEST(FaultOptionsFrom, UnknownFieldsAndWrongTypesAreRejectedNamingThem) {
  json good = procfix::detail::options_to_json({.executable = "/bin/x"});
  auto with = [&](const std::string& key, json value) {
    json changed = good;
    changed[key] = std::move(value);
    return changed;
  };
  expect_rejected(with("colour", "red"), "unknown field(s) 'colour'");
  expect_rejected(with("on_ready", json::object()), "'on_ready'");
  expect_rejected(with("ready_timeout_ms", "soon"), ".ready_timeout_ms must be");
  expect_rejected(with("args", {"a", 1}), ".args must be an array of strings");
  expect_rejected(with("env", {{"A", 1}}), ".env.A must be a string");
  expect_rejected(with("stop_signal", 1.5), ".stop_signal must be an integer");
  expect_rejected(with("readiness", {{"mode", "smoke"}}), "'smoke'");
  expect_rejected(with("readiness", {{"mode", "ready_fd"}, {"fdd", 3}}), ".readiness has unknown");
  expect_rejected(with("expected_exit", {{"status", 0}, {"any", true}}), ".expected_exit must be");
  expect_rejected(with("procfix_server_options", 2), "reads version 1");
  json unversioned = good;
  unversioned.erase("procfix_server_options");
  expect_rejected(unversioned, "not procfix server options");
  expect_rejected(json::array(), "must be an object");
}

// Options that JSON cannot carry are refused on the writing side, naming the field.
TEST(FaultOptionsFrom, OptionsThatCannotBeWrittenAsJsonNameTheField) {
  try {
    (void)procfix::detail::options_to_json({.executable = "/bin/x", .args = {"ok", "\xff\xfe"}});
    ADD_FAILURE() << "written";
  } catch (const procfix::OptionsError& e) {
    EXPECT_THAT(e.what(), HasSubstr(".args[1]"));
    EXPECT_THAT(e.what(), HasSubstr("not valid UTF-8"));
  }
}

// The whole path: the setup command takes the server's options from the binary's C++ (its
// arguments, environment, readiness fd 5, SIGINT as stop signal), and the kept server has them.
TEST(FaultOptionsFrom, ASharedServerStartsWithTheOptionsOfTheTestBinary) {
  OptionsFromStateDir dir;
  const BoundedRun started = detach_from(dir, "first");
  ASSERT_EQ(started.status, 0) << started.err;
  const json ready = json::parse(started.out);
  EXPECT_EQ(ready.at("message").at("env").at("PROCFIX_FROM_CPP"), "defined in C++");
  std::ifstream state_file{dir.file()};
  const json state = json::parse(state_file);
  EXPECT_EQ(state.at("name"), "first");
  EXPECT_EQ(state.at("keeper").at("stop_grace_ms"), 3000);
  const BoundedRun stopped = run_cli({"--stop", "--state=" + dir.file()});
  EXPECT_EQ(stopped.status, 0) << stopped.err;
  EXPECT_EQ(json::parse(stopped.out).at("ok"), true) << stopped.out;
  // The second server of the same binary is found by its name too.
  OptionsFromStateDir other;
  const BoundedRun second = detach_from(other, "second");
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(run_cli({"--stop", "--state=" + other.file()}).status, 0);
}

// Every failure of the binary is a usage error (exit 2) that names the binary and the server
// asked for, starts nothing and leaves no state file.
void expect_failure(const OptionsFromStateDir& dir, const BoundedRun& result,
                    const std::vector<std::string>& words) {
  EXPECT_EQ(result.status, 2) << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_THAT(result.err, HasSubstr("'" + kBinary + "'"));
  EXPECT_THAT(result.err, HasSubstr("PROCFIX_DESCRIBE_SERVER="));
  for (const std::string& word : words) EXPECT_THAT(result.err, HasSubstr(word));
  EXPECT_FALSE(std::filesystem::exists(dir.file())) << "a keeper was started";
}

TEST(FaultOptionsFrom, ABinaryPrintingJunkIsAnErrorQuotingIt) {
  OptionsFromStateDir dir;
  expect_failure(dir, detach_from(dir, "junk"),
                 {"printed no options", "'Running main() from a test binary", "not a JSON object",
                  "add_global_server() for 'junk'"});
}

TEST(FaultOptionsFrom, ABinaryPrintingNothingIsAnError) {
  OptionsFromStateDir dir;
  expect_failure(dir, detach_from(dir, "nothing"), {"printed nothing on stdout"});
}

TEST(FaultOptionsFrom, ABinaryThatCrashesIsAnErrorWithItsSignalAndStderr) {
  OptionsFromStateDir dir;
  expect_failure(dir, detach_from(dir, "crash"), {"SIGABRT", "crashing on purpose"});
}

TEST(FaultOptionsFrom, ABinaryThatExitsNonZeroIsAnErrorWithItsStatusAndStderr) {
  OptionsFromStateDir dir;
  expect_failure(dir, detach_from(dir, "exit7"), {"exited with status 7", "exiting with 7"});
}

// A binary that hangs is killed when --options-from-timeout passes (and nothing of it is left).
TEST(FaultOptionsFrom, ABinaryThatHangsIsKilledAtTheTimeout) {
  OptionsFromStateDir dir;
  const std::string name = unique_token("hang");
  const BoundedRun result = detach_from(dir, name, {"--options-from-timeout=300"});
  expect_failure(dir, result, {"did not finish within 300 ms and was killed"});
  EXPECT_TRUE(survivors_with(name).empty());
}

TEST(FaultOptionsFrom, ABinaryFloodingStdoutIsAnErrorNotUnboundedMemory) {
  OptionsFromStateDir dir;
  expect_failure(dir, detach_from(dir, "flood"), {"printed more than 1048576 bytes"});
}

TEST(FaultOptionsFrom, OptionsWithAnUnknownFieldAreAnErrorNamingIt) {
  OptionsFromStateDir dir;
  expect_failure(dir, detach_from(dir, "unknown_field"),
                 {"printed options that cannot be used", "'colour'"});
}

// A name no add_global_server() call has: the binary says which names it has and runs no test
// (its only test aborts).
TEST(FaultOptionsFrom, AnUnknownNameIsAnErrorListingTheNamesTheBinaryHas) {
  OptionsFromStateDir dir;
  expect_failure(
      dir, detach_from(dir, "nope"),
      {"exited with status 4", "defines no global server of that name", "'first', 'second'"});
}

// A binary whose main() calls add_global_server() for no server runs no test either
// (GTEST_FILTER=-*): its gtest summary is the junk quoted.
TEST(FaultOptionsFrom, ABinaryWithoutGlobalServersRunsNoTestAndIsAnError) {
  OptionsFromStateDir dir;
  const BoundedRun result = detach_from(dir, "no_servers");
  expect_failure(dir, result, {"printed no options", "0 tests"});
  EXPECT_THAT(result.err, Not(HasSubstr("SIGABRT")));
}

// A binary that answers but leaves a process holding its stdout: procfix-run does not wait for
// that process (it returns at once with the options) and kills it.
TEST(FaultOptionsFrom, AProcessTheBinaryLeftHoldingItsStdoutIsKilledAndNotWaitedFor) {
  OptionsFromStateDir dir;
  const std::string name = unique_token("orphan");
  const BoundedRun started = detach_from(dir, name, {"--options-from-timeout=10000"});
  ASSERT_EQ(started.status, 0) << started.err;
  EXPECT_EQ(run_cli({"--stop", "--state=" + dir.file()}).status, 0);
  // (The keeper's command line had the token too, until the stop.)
  EXPECT_TRUE(survivors_with(name).empty()) << "the process the binary left is still running";
}

TEST(FaultOptionsFrom, AMissingBinaryOrABadValueIsAnError) {
  OptionsFromStateDir dir;
  const BoundedRun missing =
      run_cli({"--detach", "--state=" + dir.file(), "--options-from=/nonexistent/tests:pg"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_THAT(missing.err, HasSubstr("'/nonexistent/tests' (run with PROCFIX_DESCRIBE_SERVER=pg"));
  EXPECT_THAT(missing.err, HasSubstr("cannot be run: No such file or directory"));
  const BoundedRun no_name =
      run_cli({"--detach", "--state=" + dir.file(), "--options-from=" + kBinary});
  EXPECT_EQ(no_name.status, 2);
  EXPECT_THAT(no_name.err, HasSubstr("--options-from needs BINARY:NAME"));
  EXPECT_FALSE(std::filesystem::exists(dir.file()));
}

// The options must not be written twice: no server option and no "-- SERVER" with it.
TEST(FaultOptionsFrom, OtherServerOptionsCannotBeGivenWithIt) {
  OptionsFromStateDir dir;
  const BoundedRun twice = detach_from(dir, "first", {"--stop-grace=100"});
  EXPECT_EQ(twice.status, 2);
  EXPECT_THAT(twice.err, HasSubstr("'--stop-grace=100' cannot be given with it"));
  const BoundedRun server = detach_from(dir, "first", {"--", PROCFIX_SAMPLE_CHILD});
  EXPECT_EQ(server.status, 2);
  EXPECT_THAT(server.err, HasSubstr("nothing may follow '--'"));
  EXPECT_FALSE(std::filesystem::exists(dir.file()));
}

}  // namespace
