// The fault matrix for groups (issue 15): what a ServerGroup takes from its user — members,
// factories, dependencies, PROCFIX_TRACE — driven into its corners. Every failure names the
// member, happens before anything spawns where it can, and leaves nothing running.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faults/fault_support.hpp"
#include "procfix/fixtures/group.hpp"

namespace {

using namespace std::chrono_literals;
using procfix::Dependencies;
using procfix::GroupMember;
using procfix::OptionsError;
using procfix::ServerGroup;
using procfix::ServerOptions;
using procfix::StartError;
using ::testing::HasSubstr;

// A sample_child member carrying `token` on its command line (to look for survivors).
GroupMember sample(const std::string& name, const std::string& token = "",
                   std::vector<std::string> depends_on = {}) {
  std::vector<std::string> args;
  if (!token.empty()) args.push_back("--extra-json={\"token\":\"" + token + "\"}");
  return {.name = name,
          .depends_on = std::move(depends_on),
          .options = {.executable = PROCFIX_SAMPLE_CHILD, .args = std::move(args)}};
}

// A member whose factory counts its calls and makes a plain sample_child.
GroupMember counted(const std::string& name, int& calls, std::vector<std::string> deps = {}) {
  return {.name = name, .depends_on = std::move(deps), .factory = [&calls](const Dependencies&) {
            ++calls;
            return ServerOptions{.executable = PROCFIX_SAMPLE_CHILD};
          }};
}

// Constructs the group, expecting OptionsError; returns its message.
std::string options_error(std::vector<GroupMember> members) {
  try {
    ServerGroup group{std::move(members)};
  } catch (const OptionsError& e) {
    return e.what();
  }
  return "(no OptionsError)";
}

TEST(FaultGroup, FactoryThatThrowsFailsTheStartNamingItsMemberAndStopsTheOthers) {
  const std::string token = procfix::testing::unique_token();
  try {
    ServerGroup group{{sample("backend", token),
                       {.name = "proxy",
                        .depends_on = {"backend"},
                        .factory = [](const Dependencies&) -> ServerOptions {
                          throw std::runtime_error{"no config template"};
                        }}}};
    ADD_FAILURE() << "the group started";
  } catch (const StartError& e) {
    EXPECT_EQ(e.server(), "proxy");
    EXPECT_THAT(e.what(), HasSubstr("server 'proxy' was not started: its options factory threw: "
                                    "no config template"));
    EXPECT_THAT(e.what(), HasSubstr("stopped backend"));
  }
  EXPECT_THAT(procfix::testing::survivors_with(token), ::testing::IsEmpty());
}

TEST(FaultGroup, InvalidOptionsFromAFactoryAreAnOptionsErrorNamingTheMember) {
  const std::string token = procfix::testing::unique_token();
  const std::string message = options_error(
      {sample("backend", token),
       {.name = "proxy", .depends_on = {"backend"}, .factory = [](const Dependencies&) {
          return ServerOptions{.executable = PROCFIX_SAMPLE_CHILD, .ready_timeout = 0ms};
        }}});
  EXPECT_THAT(message, HasSubstr("the options factory of server 'proxy' made invalid options"));
  EXPECT_THAT(message, HasSubstr("ready_timeout"));
  EXPECT_THAT(message, HasSubstr("stopped backend"));
  EXPECT_THAT(procfix::testing::survivors_with(token), ::testing::IsEmpty());
}

TEST(FaultGroup, FactoryAskingForAnUndeclaredDependencyIsAnOptionsError) {
  const std::string message =
      options_error({sample("db"),
                     sample("cache"),
                     {.name = "api", .depends_on = {"db"}, .factory = [](const Dependencies& d) {
                        return ServerOptions{.executable = PROCFIX_SAMPLE_CHILD,
                                             .args = {d.endpoint("cache").address()}};
                      }}});
  EXPECT_THAT(message, HasSubstr("the options factory of server 'api' asked for 'cache', which is "
                                 "not in its depends_on ('db')"));
}

TEST(FaultGroup, DependencyThatIsNeverReadyFailsTheStartAndItsDependentsNeverSpawn) {
  const std::string token = procfix::testing::unique_token();
  int dependent_calls = 0;
  GroupMember hung = sample("hung");
  hung.options.args = {"--never-ready"};
  hung.options.ready_timeout = 200ms;
  try {
    ServerGroup group{{sample("independent", token), std::move(hung),
                       counted("dependent", dependent_calls, {"hung"})}};
    ADD_FAILURE() << "the group started";
  } catch (const StartError& e) {
    EXPECT_EQ(e.server(), "hung");
    EXPECT_EQ(e.reason(), StartError::Reason::ready_timeout);
    EXPECT_THAT(e.what(), HasSubstr("not started: dependent"));
  }
  EXPECT_EQ(dependent_calls, 0);
  EXPECT_THAT(procfix::testing::survivors_with(token), ::testing::IsEmpty());
}

// A group's failed start stopped the members still starting one after another, each with its
// own short grace (min(stop_grace, 1 s)), so members that ignore SIGTERM took a grace each. They
// are now signalled first and awaited together. The members arm themselves (ignore SIGTERM),
// then tell the failing member through a FIFO each, so the failure comes after every one is
// armed: no timing assumption.
TEST(FaultGroup, MembersStillStartingAreStoppedTogetherWhenAnotherFails) {
  constexpr int kHung = 4;
  const std::string token = procfix::testing::unique_token();
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / token;
  std::filesystem::create_directory(dir);
  std::vector<GroupMember> members;
  std::string fifos;
  for (int i = 0; i < kHung; ++i) {
    const std::string fifo = (dir / ("armed" + std::to_string(i))).string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    fifos += " " + fifo;
    members.push_back({.name = "hung" + std::to_string(i),
                       .options = {.executable = "bash",
                                   .args = {"-c", "trap '' TERM; echo armed > " + fifo +
                                                      "; exec -a sleep-" + token + " sleep 600"},
                                   .ready_timeout = 60s,
                                   .stop_grace = 2s}});  // a failed start's grace: min(2 s, 1 s)
  }
  members.push_back({.name = "fails",
                     .options = {.executable = "sh", .args = {"-c", "cat" + fifos + "; exit 3"}}});
  const auto began = std::chrono::steady_clock::now();
  try {
    ServerGroup group{std::move(members)};
    ADD_FAILURE() << "the group started";
  } catch (const StartError& e) {
    EXPECT_EQ(e.server(), "fails");
    EXPECT_EQ(e.reason(), StartError::Reason::exited_before_ready);
  }
  const auto took = std::chrono::steady_clock::now() - began;
  // One after another: kHung × 1 s; together: 1 s. Half the sum tells them apart with a margin.
  EXPECT_LT(took, kHung * 1s / 2) << "the starting members were stopped one after another";
  EXPECT_THAT(procfix::testing::survivors_with(token), ::testing::IsEmpty());
  std::filesystem::remove_all(dir);
}

TEST(FaultGroup, SelfDependencyIsACycle) {
  int calls = 0;
  EXPECT_THAT(options_error({counted("root", calls), counted("a", calls, {"a"})}),
              HasSubstr("dependency cycle: a -> a"));
  EXPECT_EQ(calls, 0);
}

TEST(FaultGroup, UnknownDependencyIsRejectedNamingBoth) {
  int calls = 0;
  EXPECT_THAT(
      options_error({counted("root", calls), counted("api", calls, {"dbb"})}),
      HasSubstr("server 'api' depends on 'dbb', which is not in the group ('root', 'api')"));
  EXPECT_EQ(calls, 0);
}

TEST(FaultGroup, EmptyGroupIsRejected) {
  EXPECT_THAT(options_error({}), HasSubstr("server group: it has no servers"));
}

TEST(FaultGroup, DuplicateNamesAreRejected) {
  int calls = 0;
  EXPECT_THAT(options_error({counted("db", calls), counted("db", calls)}),
              HasSubstr("two servers are named 'db'"));
  EXPECT_EQ(calls, 0);
}

TEST(FaultGroup, MemberWithoutNameOrWithBothOrNeitherOfOptionsAndFactoryIsRejected) {
  int calls = 0;
  GroupMember nameless = counted("", calls);
  EXPECT_THAT(options_error({counted("a", calls), nameless}), HasSubstr("member #2 has no name"));
  GroupMember both = sample("both");
  both.factory = [](const Dependencies&) { return ServerOptions{}; };
  EXPECT_THAT(options_error({both}), HasSubstr("server 'both' has both options"));
  EXPECT_THAT(options_error({{.name = "neither"}}), HasSubstr("server 'neither' has neither"));
  EXPECT_EQ(calls, 0);
}

TEST(FaultGroup, BadPlainOptionsAreRejectedBeforeAnythingSpawns) {
  int calls = 0;
  GroupMember bad = sample("bad");
  bad.options.ready_timeout = -1ms;
  EXPECT_THAT(options_error({counted("first", calls), bad}), HasSubstr("ready_timeout"));
  EXPECT_EQ(calls, 0);
}

// Found by an outside tester: bad options of a plain member were ServerOptions' bare error, with
// neither the member's name nor "server group:" in it, and field() was the ServerOptions field.
TEST(FaultGroup, BadPlainOptionsNameTheMember) {
  GroupMember bad = sample("api");
  bad.options.ready_timeout = 0ms;
  try {
    ServerGroup group{{sample("db"), bad}};
    ADD_FAILURE() << "the group started";
  } catch (const procfix::GroupOptionsError& e) {
    EXPECT_EQ(e.field(), ".options");
    EXPECT_THAT(e.what(), ::testing::StartsWith("server group: the options of server 'api'"));
    EXPECT_THAT(e.what(), HasSubstr("ready_timeout"));
  }
}

// Found by an outside tester: a factory throwing something that is not a std::exception escaped
// the group raw. It is now a StartError naming the member; the others are stopped.
TEST(FaultGroup, FactoryThrowingANonStandardExceptionFailsTheStartNamingItsMember) {
  const std::string token = procfix::testing::unique_token();
  GroupMember thrower{.name = "thrower",
                      .depends_on = {"db"},
                      .factory = [](const Dependencies&) -> ServerOptions { throw 42; }};
  try {
    ServerGroup group{{sample("db", token), thrower}};
    ADD_FAILURE() << "the group started";
  } catch (const StartError& e) {
    EXPECT_EQ(e.server(), "thrower");
    EXPECT_THAT(e.what(), HasSubstr("its options factory threw something that is not"));
  }
  EXPECT_THAT(procfix::testing::survivors_with(token), ::testing::IsEmpty());
}

// Found by an outside tester: the cycle check recursed once per member, so a dependency chain of
// 50,000 members overflowed the stack (SIGSEGV) before anything was spawned.
TEST(FaultGroup, CycleThroughFiftyThousandMembersIsRejectedWithoutRecursion) {
  constexpr int kMembers = 50'000;
  int calls = 0;
  std::vector<GroupMember> members;
  auto name = [](int i) {  // std::string{"m"} + ..., not "m" + ...: g++ 12's -Wrestrict at -O2
    return std::string{"m"}.append(std::to_string(i));
  };
  for (int i = 0; i < kMembers; ++i) {
    members.push_back(counted(name(i), calls, {name((i + 1) % kMembers)}));
  }
  const std::string message = options_error(std::move(members));
  EXPECT_THAT(message, ::testing::StartsWith("server group: dependency cycle: m0 -> m1 -> m2"));
  EXPECT_THAT(message, HasSubstr("m49999 -> m0 (nothing was started)"));
  EXPECT_EQ(calls, 0);
}

// Found by an outside tester: a member name that is not valid UTF-8 became the server's name and
// went raw into messages and the JUnit report, which it made unreadable.
TEST(FaultGroup, MemberNameThatIsNotValidUtf8IsRejected) {
  int calls = 0;
  EXPECT_THAT(options_error({counted("ok", calls), counted("x\xff", calls)}),
              HasSubstr("member #2's name 'x\xEF\xBF\xBD' is not valid UTF-8"));
  EXPECT_EQ(calls, 0);
}

TEST(FaultGroup, UnwritableTraceFileIsReportedAndTheTestGoesOn) {
  const std::string path =
      "/proc/procfix-no-such-dir-" + std::to_string(::getpid()) + "/trace.json";
  ASSERT_EQ(::setenv("PROCFIX_TRACE", path.c_str(), 1), 0);
  ::testing::internal::CaptureStderr();
  {
    ServerGroup group{{sample("traced")}};
    for (const procfix::StopReport& r : group.stop()) EXPECT_TRUE(r.ok()) << r.describe();
  }
  const std::string stderr_text = ::testing::internal::GetCapturedStderr();
  ::unsetenv("PROCFIX_TRACE");
  EXPECT_THAT(stderr_text, HasSubstr("PROCFIX_TRACE=" + path + ": cannot open the trace file"));
  EXPECT_THAT(procfix::testing::recorded_property("procfix.trace_error"),
              HasSubstr("cannot open the trace file"));
  EXPECT_EQ(procfix::testing::recorded_property("procfix.traced.outcome"), "clean");
}

}  // namespace
