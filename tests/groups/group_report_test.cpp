// What a run leaves for CI and for people: the procfix.* properties in the XML report of the
// server-group-demo binary, and the PROCFIX_TRACE timeline of a `ctest -j2` run of it.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "can_run_postgres.hpp"
#include "support/command.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, {}};
}

std::string scratch(const std::string& name) {
  return ::testing::TempDir() + "groups-" + std::to_string(::getpid()) + "-" + name;
}

// The value of property `name` in the XML report: an element <property name=".." value=".."/>
// (a test's) or an attribute name="..." (a suite's or the run's).
std::string property(const std::string& xml, const std::string& name) {
  for (const std::string& form : {"name=\"" + name + "\" value=\"", " " + name + "=\""}) {
    const std::size_t at = xml.find(form);
    if (at == std::string::npos) continue;
    const std::size_t begin = at + form.size();
    return xml.substr(begin, xml.find('"', begin) - begin);
  }
  return "(missing)";
}

TEST(GroupReport, XmlReportOfTheDemoCarriesProcfixProperties) {
  const std::string xml_file = scratch("report.xml");
  const std::string logs = scratch("logs");
  std::filesystem::remove_all(logs);
  const auto run = procfix::testing::run_command(
      {"env", "PROCFIX_LOG_DIR=" + logs, PROCFIX_GROUP_DEMO, "--gtest_output=xml:" + xml_file,
       "--gtest_filter=ProxyDemo.*:ProxyPerTest.*"});
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string xml = read_file(xml_file);
  // The per-test group: properties of the test; the suite's group: attributes of its testsuite.
  for (const std::string server : {"procfix.backend.", "procfix.proxy."}) {
    EXPECT_THAT(property(xml, server + "pid"), MatchesRegex("[0-9]+")) << xml;
    EXPECT_EQ(property(xml, server + "outcome"), "clean") << xml;
    EXPECT_THAT(property(xml, server + "ready_ms"), MatchesRegex("[0-9]+\\.[0-9]{3}"));
    EXPECT_THAT(property(xml, server + "stop_ms"), MatchesRegex("[0-9]+\\.[0-9]{3}"));
    EXPECT_EQ(property(xml, server + "readiness"), "ready_fd");
    EXPECT_THAT(property(xml, server + "stderr_log"), HasSubstr(logs));
  }
  EXPECT_THAT(xml, HasSubstr("<testsuite name=\"ProxyDemo\""));
  EXPECT_THAT(
      xml, MatchesRegex("(.|\n)*<testsuite name=\"ProxyDemo\"[^>]* procfix\\.proxy\\.pid=(.|\n)*"));
  EXPECT_THAT(xml, MatchesRegex("(.|\n)*<property name=\"procfix\\.proxy\\.pid\"(.|\n)*"));
  std::filesystem::remove_all(logs);
  std::filesystem::remove(xml_file);
}

// The trace file: "[" then one event per line, each followed by ",", the closing "]" left out
// (the JSON Array Format allows it). Parsed as the viewers do: the "]" added.
nlohmann::json parse_trace(const std::string& text) {
  std::string fixed = text;
  while (!fixed.empty() && (fixed.back() == '\n' || fixed.back() == ',')) fixed.pop_back();
  return nlohmann::json::parse(fixed + "\n]");
}

TEST(GroupTrace, CtestRunOfTheDemoGivesOneCompleteSpanPerServer) {
  const std::string trace = scratch("trace.json");
  // ctest writes its Testing/ directory into the tree it runs: a scratch tree whose only entry is
  // this build folder, so that the build tree is not written (it may not be ours to write).
  const std::string tree = scratch("ctest");
  std::filesystem::remove(trace);  // left by an earlier run with the same pid (a pid namespace)
  std::filesystem::remove_all(tree);
  std::filesystem::create_directories(tree);
  std::ofstream{tree + "/CTestTestfile.cmake"} << "subdirs(\"" PROCFIX_GROUP_TEST_DIR "\")\n";
  const auto run = procfix::testing::run_command({"env", "PROCFIX_TRACE=" + trace, PROCFIX_CTEST,
                                                  "--test-dir", tree, "-L", "server-group-demo",
                                                  "-j2", "--output-on-failure"});
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string text = read_file(trace);
  ASSERT_TRUE(text.starts_with("[\n")) << text;
  const nlohmann::json events = parse_trace(text);  // throws (fails the test) if invalid
  ASSERT_TRUE(events.is_array());
  std::multiset<std::string> servers;  // "scope/name" of every server span
  std::set<std::pair<int, int>> tracks;
  std::size_t starts = 0, stops = 0;
  for (const nlohmann::json& e : events) {
    if (e.at("ph") == "M") continue;
    ASSERT_EQ(e.at("ph"), "X") << e;
    EXPECT_GE(e.at("dur").get<double>(), 0.0) << e;
    if (e.at("cat") == "procfix.start") ++starts;
    if (e.at("cat") == "procfix.stop") ++stops;
    if (e.at("cat") != "procfix.server") continue;
    EXPECT_EQ(e.at("args").at("outcome"), "clean") << e;
    EXPECT_GT(e.at("args").at("server_pid").get<int>(), 0) << e;
    EXPECT_EQ(e.at("tid"), e.at("args").at("server_pid"));
    tracks.insert({e.at("pid").get<int>(), e.at("tid").get<int>()});
    servers.insert(e.at("args").at("test").get<std::string>() + "/" +
                   e.at("name").get<std::string>());
  }
  // Each demo test is a process of its own under ctest: the suite's group starts in both of its
  // processes, the per-test group in its test, PostgreSQL's where it can run.
  std::multiset<std::string> expected{"ProxyDemo/backend",
                                      "ProxyDemo/proxy",
                                      "ProxyDemo/backend",
                                      "ProxyDemo/proxy",
                                      "ProxyPerTest.EchoThroughAProxyConfiguredByFile/backend",
                                      "ProxyPerTest.EchoThroughAProxyConfiguredByFile/proxy"};
  if (procfix::testing::can_run_postgres()) {
    expected.insert("PostgresBehindAProxy.QueryThroughTheProxy/postgres");
    expected.insert("PostgresBehindAProxy.QueryThroughTheProxy/proxy");
  }
  EXPECT_EQ(servers, expected) << text;
  EXPECT_EQ(tracks.size(), servers.size()) << "one track per server";
  EXPECT_EQ(starts, servers.size());
  EXPECT_EQ(stops, servers.size());
  std::filesystem::remove(trace);
  std::filesystem::remove_all(tree);
}

}  // namespace
