// The fault matrix, readiness text: what a server writes (output lines, the readiness message,
// addresses) is matched in linear time with bounded memory, parsed strictly, and stored as valid
// UTF-8. Component tests first (fixtures/src/detail), then end-to-end ones through procfix::Server.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "detail/address.hpp"
#include "detail/line_scanner.hpp"
#include "detail/output_capture.hpp"
#include "detail/ready_message.hpp"
#include "detail/text.hpp"
#include "detail/unique_fd.hpp"
#include "faults/fault_support.hpp"
#include "procfix/fixtures/endpoint.hpp"
#include "procfix/fixtures/errors.hpp"
#include "procfix/fixtures/server.hpp"

namespace procfix::detail {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using procfix::Readiness;
using procfix::Server;
using procfix::ServerOptions;
using procfix::StartError;

std::shared_ptr<const LinePattern> compile(const std::string& pattern) {
  std::string error;
  auto compiled = LinePattern::compile(pattern, error);
  EXPECT_NE(compiled, nullptr) << pattern << ": " << error;
  return compiled;
}

// Issue 13 item 1: a matching line of 40 kB with "listening on (.*)" overflowed libstdc++'s
// recursive std::regex matcher (SIGSEGV). RE2 does not recurse.
TEST(FaultReadinessText, ScannerMatchesA40kBLineWithoutRecursion) {
  LineScanner scanner{compile("listening on (.*)")};
  const std::string address(40'000, 'x');
  EXPECT_FALSE(scanner.feed("noise\nlistening on " + address + "\nmore\n"));
  ASSERT_TRUE(scanner.matched());
  EXPECT_EQ(scanner.match()->address, address);
  EXPECT_FALSE(scanner.match()->truncated);
}

// Issue 13 item 1: "(a+)+$" against 200,000 'a's and a 'b' overflowed the stack; against 32 'a's
// and a 'b' it backtracked for minutes, past the deadline. RE2 takes linear time; a line over the
// bound is matched on its first bytes without letting "$" match at the cut.
TEST(FaultReadinessText, ScannerHasNoCatastrophicBacktracking) {
  LineScanner scanner{compile("(a+)+$")};
  EXPECT_TRUE(scanner.feed(std::string(32, 'a') + "b\n"));
  EXPECT_TRUE(scanner.feed(std::string(200'000, 'a') + "b\n"));
  EXPECT_FALSE(scanner.matched());
  EXPECT_EQ(scanner.lines_seen(), 2u);
  EXPECT_FALSE(scanner.feed(std::string(1000, 'a') + "\n"));
  EXPECT_TRUE(scanner.matched());
}

// Issue 13 item 1: the deadline is honoured while scanning (between lines).
TEST(FaultReadinessText, ScannerStopsAtTheDeadline) {
  LineScanner scanner{compile("ready")};
  scanner.set_deadline(LineScanner::Clock::now() - 1ms);
  EXPECT_FALSE(scanner.feed("a\nb\nready\n"));
  EXPECT_TRUE(scanner.gave_up_at_deadline());
  EXPECT_FALSE(scanner.matched());
  EXPECT_EQ(scanner.lines_seen(), 1u);
}

// Issue 13 item 6: a line over the bound is matched on its first kMaxOutputLineBytes bytes and
// the rest is skipped up to the newline, never kept: the scanner's memory does not grow. It is
// matched when it ends (an outside-tester pass: it counted at the cut, before it was complete).
TEST(FaultReadinessText, ScannerMatchesAnOverlongLineInABoundedWindow) {
  LineScanner early{compile("^start (\\S+)")};
  EXPECT_TRUE(early.feed("start 127.0.0.1:80 " + std::string(kMaxOutputLineBytes, 'y')));
  EXPECT_FALSE(early.matched());
  EXPECT_FALSE(early.feed("yyy\n"));
  ASSERT_TRUE(early.matched());
  EXPECT_TRUE(early.match()->truncated);
  EXPECT_EQ(early.match()->line.size(), kMaxOutputLineBytes);
  EXPECT_EQ(early.match()->address, "127.0.0.1:80");

  LineScanner late{compile("late")};
  const std::string chunk(64 * 1024, 'z');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(late.feed(chunk));  // 12.5 MiB, one line
  EXPECT_TRUE(late.feed("late\nnext\n"));                       // "late" is past the window
  EXPECT_FALSE(late.feed("late\n"));
  EXPECT_EQ(late.match()->line, "late");
}

// Outside-tester pass: a CRLF line whose text is exactly the bound counted as too long (the '\r'
// took the last byte of the window before it was stripped), so "$" did not match.
TEST(FaultReadinessText, ScannerTakesACrlfLineOfExactlyTheBound) {
  LineScanner crlf{compile("^a+$")};
  EXPECT_FALSE(crlf.feed(std::string(kMaxOutputLineBytes, 'a') + "\r\n"));
  ASSERT_TRUE(crlf.matched());
  EXPECT_FALSE(crlf.match()->truncated);
  EXPECT_EQ(crlf.match()->line.size(), kMaxOutputLineBytes);
  LineScanner longer{compile("^a+$")};
  EXPECT_TRUE(longer.feed(std::string(kMaxOutputLineBytes + 1, 'a') + "\n"));  // cut: no "$"
  EXPECT_FALSE(longer.matched());
}

// Issue 13 item 10: every byte is scanned, however the stream is cut into chunks.
TEST(FaultReadinessText, ScannerSeesLinesSplitAcrossChunks) {
  const std::string stream = std::string(100'000, '.') + "\nx listening on 10.0.0.1:7 y\r\nz\n";
  for (std::size_t step : {1u, 2u, 7u, 4096u, 65536u}) {
    LineScanner scanner{compile("listening on (\\S+)")};
    for (std::size_t i = 0; i < stream.size() && !scanner.matched(); i += step) {
      scanner.feed(std::string_view{stream}.substr(i, step));
    }
    ASSERT_TRUE(scanner.matched()) << step;
    EXPECT_EQ(scanner.match()->line, "x listening on 10.0.0.1:7 y") << step;  // '\r' dropped
    EXPECT_EQ(scanner.match()->address, "10.0.0.1:7");
  }
}

TEST(FaultReadinessText, ScannerMatchesALastLineWithoutNewlineOnlyAtTheEnd) {
  LineScanner scanner{compile("ready")};
  EXPECT_TRUE(scanner.feed("rea"));
  EXPECT_TRUE(scanner.feed("dy"));
  EXPECT_FALSE(scanner.matched());
  EXPECT_TRUE(scanner.finish());
}

// Issue 16 item 4: two capture groups are the host and the port; an IPv6 host gets brackets.
TEST(FaultReadinessText, ScannerJoinsTwoGroupsAsHostAndPort) {
  LineScanner v4{compile(R"(host=(\S+) port=(\d+))")};
  v4.feed("host=127.0.0.1 port=8080\n");
  EXPECT_EQ(v4.match()->address, "127.0.0.1:8080");
  LineScanner v6{compile(R"(host=(\S+) port=(\d+))")};
  v6.feed("host=::1 port=8080\n");
  EXPECT_EQ(v6.match()->address, "[::1]:8080");
  LineScanner none{compile(R"(ready(?: at (\S+))?)")};
  none.feed("ready\n");
  EXPECT_EQ(none.match()->address, "");

  std::string error;
  EXPECT_EQ(LinePattern::compile("(a)(b)(c)", error), nullptr);
  EXPECT_THAT(error, HasSubstr("3 capture groups"));
  EXPECT_EQ(LinePattern::compile("listening on (", error), nullptr);
  EXPECT_THAT(error, HasSubstr("missing )"));
  // Backreferences and lookarounds are not RE2 syntax.
  EXPECT_EQ(LinePattern::compile("(a)\\1", error), nullptr);
  EXPECT_EQ(LinePattern::compile("a(?=b)", error), nullptr);
}

// Issue 13 item 2: a matched line with invalid UTF-8 is stored valid (U+FFFD).
TEST(FaultReadinessText, ScannerStoresTheLineAsValidUtf8) {
  LineScanner scanner{compile("ready at (\\S+)")};
  scanner.feed("\xff ready at /tmp/\xc3(.sock\n");
  ASSERT_TRUE(scanner.matched());
  EXPECT_EQ(scanner.match()->line, "\xEF\xBF\xBD ready at /tmp/\xEF\xBF\xBD(.sock");
  EXPECT_TRUE(is_valid_utf8(scanner.match()->address));
}

// Issue 13 item 2: the sanitiser (Unicode's "maximal subparts" replacement).
TEST(FaultReadinessText, Utf8SanitiserReplacesInvalidSequences) {
  const std::string fffd{kReplacementCharacter};
  EXPECT_EQ(to_valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(to_valid_utf8("a\x80z"), "a" + fffd + "z");                     // stray continuation
  EXPECT_EQ(to_valid_utf8("a\xe2\x82z"), "a" + fffd + "z");                 // truncated, one part
  EXPECT_EQ(to_valid_utf8("\xc0\xaf"), fffd + fffd);                        // overlong
  EXPECT_EQ(to_valid_utf8("\xed\xa0\x80"), fffd + fffd + fffd);             // surrogate
  EXPECT_EQ(to_valid_utf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98"), fffd);                           // cut at the end
  EXPECT_EQ(to_valid_utf8(std::string_view{"a\0b", 3}), std::string("a\0b", 3));
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(quote_for_message("ab\ncd"), "'ab cd'");
  EXPECT_EQ(quote_for_message("\xc3\xa9\xc3\xa9", 3), "'\xc3\xa9...'");  // not split
  EXPECT_TRUE(is_valid_utf8(quote_for_message("\xff\xfe")));
}

// Issue 13 item 17: a JSON object followed by a NUL and junk was accepted; duplicate keys are
// rejected as malformed, naming the key.
TEST(FaultReadinessText, ReadyMessageParserIsStrict) {
  EXPECT_TRUE(parse_ready_message(R"({"address":"127.0.0.1:1","pid":4})").ok());
  EXPECT_TRUE(parse_ready_message(" {\"address\":\"a\"} \r").ok());

  const ReadyMessage nul = parse_ready_message(std::string_view{"{\"a\":1}\0junk", 12});
  EXPECT_EQ(nul.error, "a NUL byte at byte 7");
  EXPECT_THAT(nul.describe(), HasSubstr("'{\"a\":1} junk'"));
  EXPECT_THAT(parse_ready_message(R"({"a":1} junk)").error,
              HasSubstr("not a JSON object: syntax error at byte 8"));
  EXPECT_THAT(parse_ready_message(R"({"a":1}{"b":2})").error, HasSubstr("syntax error"));
  EXPECT_EQ(parse_ready_message(R"({"address":"x:1","pid":1,"address":"y:2"})").error,
            "duplicate key \"address\"");
  EXPECT_EQ(parse_ready_message(R"({"o":{"k":1,"k":2}})").error, "duplicate key \"k\"");
  EXPECT_TRUE(parse_ready_message(R"({"k":{"k":1},"l":[{"k":1},{"k":2}]})").ok());
  EXPECT_EQ(parse_ready_message("[1,2]").error, "not a JSON object but an array");
  EXPECT_EQ(parse_ready_message("\"s\"").error, "not a JSON object but a string");
  EXPECT_EQ(parse_ready_message("{\"a\":\"\xff\"}").error, "not valid UTF-8 at byte 6");
  EXPECT_EQ(parse_ready_message(std::string(64, '[') + std::string(64, ']')).error,
            "not a JSON object but an array");
  EXPECT_EQ(parse_ready_message(std::string(65, '[') + std::string(65, ']')).error,
            "nested deeper than 64 levels");
  EXPECT_TRUE(is_valid_utf8(parse_ready_message("\xff\xfe junk").describe()));
  EXPECT_EQ(parse_ready_message(R"({"n":1e999})").error, "a number out of range");
}

// Issue 13 item 17: addresses "a b:1" and "[zz]:80" were accepted.
TEST(FaultReadinessText, AddressParserIsStrict) {
  std::string why;
  auto ok = [&](std::string_view text) { return parse_address(text, why).has_value(); };
  EXPECT_TRUE(ok("127.0.0.1:8080"));
  EXPECT_TRUE(ok("localhost:1"));
  EXPECT_TRUE(ok("db-1.example.com.:65535"));
  EXPECT_TRUE(ok("[::1]:80"));
  EXPECT_TRUE(ok("[fe80::1%eth0]:80"));
  EXPECT_TRUE(ok("/tmp/s.sock"));
  EXPECT_TRUE(ok("./s.sock"));
  EXPECT_TRUE(ok("@abstract"));
  EXPECT_EQ(parse_address("[::1]:80", why)->host, "::1");
  EXPECT_EQ(parse_address("@abstract", why)->kind, Address::Kind::unix_abstract);
  EXPECT_EQ(parse_address("localhost:1", why)->kind, Address::Kind::dns_name);

  EXPECT_FALSE(ok("a b:1"));
  EXPECT_THAT(why, HasSubstr("'a b' is not a numeric IPv4 address or a DNS name"));
  EXPECT_FALSE(ok("[zz]:80"));
  EXPECT_THAT(why, HasSubstr("'zz' is not a numeric IPv6 address"));
  for (const char* bad :
       {"",       "host",  "host:",  ":80",     "1.2.3:80", "256.1.1.1:80", "-a:1",        "a-:1",
        "a..b:1", "a_b:1", "::1:80", "[::1]80", "[::1:80",  "h:0",          "h:65536",     "h:+1",
        "h: 1",   "h:080", "h:1x",   "[::1]:",  "@",        "h:\xff",       "[fe80::1%]:1"}) {
    EXPECT_FALSE(ok(bad)) << bad;
  }
  EXPECT_FALSE(ok(std::string_view{"/tmp/a\0b", 8}));
  EXPECT_TRUE(parse_address("127.0.0.1:0", why, /*allow_port_zero=*/true).has_value());
}

// Issue 13 item 2: endpoint().message().dump() threw on invalid UTF-8; Endpoint keeps only
// valid UTF-8, and its address errors quote valid UTF-8.
TEST(FaultReadinessText, EndpointKeepsOnlyValidUtf8) {
  const Endpoint endpoint{nlohmann::json{{"line", "bad \xff"}, {"k\xfe", {"\xc3"}}}};
  EXPECT_NO_THROW((void)endpoint.message().dump());
  EXPECT_EQ(endpoint.message().at("line"), "bad \xEF\xBF\xBD");
  try {
    Endpoint bad{nlohmann::json{{"address", "a\xff b:1"}}};
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(is_valid_utf8(e.what()));
    EXPECT_THAT(e.what(), HasSubstr("'a\xEF\xBF\xBD b:1': it is not valid UTF-8"));
  }
  EXPECT_THROW(Endpoint(nlohmann::json{{"address", "[zz]:80"}}), Error);
  EXPECT_TRUE(Endpoint(nlohmann::json{{"address", "@x"}}).is_unix_socket());
}

// A pipe whose read end is an OutputCapture (non-blocking), and its write end.
struct CapturedPipe {
  UniqueFd write;
  std::shared_ptr<OutputCapture> capture;

  explicit CapturedPipe(std::size_t capacity) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    write.reset(fds[1]);
    capture = std::make_shared<OutputCapture>(UniqueFd{fds[0]}, capacity);
  }
  void put(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(write.get(), bytes.data(), bytes.size());
      if (n < 0) {  // pipe full: drain, as the pump would
        ASSERT_EQ(errno, EAGAIN);
        capture->drain();
        continue;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
};

// Issue 13 items 10 and 16: the observer sees every byte, before trimming, whatever the capacity
// (output_tail_bytes = 0 kept the scan from seeing anything).
TEST(FaultReadinessText, CaptureObserverSeesEveryByteWhateverIsKept) {
  for (std::size_t capacity : {std::size_t{0}, std::size_t{16}, std::size_t{1 << 20}}) {
    CapturedPipe pipe{capacity};
    LineScanner scanner{compile("ready at (\\S+)")};
    std::uint64_t seen = 0;
    pipe.capture->set_observer([&](std::string_view chunk) {
      seen += chunk.size();
      return scanner.feed(chunk);
    });
    const std::string burst(3 * 1024 * 1024, 'x');
    pipe.put(burst + "\nready at 127.0.0.1:9\n" + burst);
    pipe.capture->drain();
    ASSERT_TRUE(scanner.matched()) << capacity;
    EXPECT_EQ(scanner.match()->address, "127.0.0.1:9");
    EXPECT_LE(seen, pipe.capture->total_bytes());  // dropped once matched
    EXPECT_LE(pipe.capture->tail().size(), capacity);
  }
}

// Issue 13 item 16: output_tail_bytes = 0 said "its stderr was empty" although lines were
// written.
TEST(FaultReadinessText, CaptureSaysNotKeptInsteadOfEmpty) {
  CapturedPipe none{0};
  EXPECT_EQ(none.capture->describe_for_message("stderr"), " (its stderr was empty)");
  none.put("line 1\nline 2\n");
  none.capture->drain();
  EXPECT_EQ(none.capture->describe_for_message("stderr"),
            " (its stderr had 14 bytes, not kept: output_tail_bytes = 0)");
  EXPECT_EQ(none.capture->tail(), "");

  CapturedPipe some{1024};
  some.put("\n\n");
  some.capture->drain();
  EXPECT_EQ(some.capture->describe_for_message("stderr"),
            " (its stderr had 2 bytes, only empty lines)");
  some.put("oops \xff\n");
  some.capture->drain();
  EXPECT_EQ(some.capture->describe_for_message("stderr"),
            "\n--- stderr of the server (last lines) ---\n\n\noops \xEF\xBF\xBD");
}

// ---- End to end: adversarial children (children/readtext_child.cpp) through procfix::Server.

using procfix::testing::fault_child;
using procfix::testing::survivors_with;
using procfix::testing::unique_token;

ServerOptions child(const std::string& mode, Readiness readiness, const std::string& token,
                    std::string n = "0") {
  return ServerOptions{.executable = fault_child("readtext_child"),
                       .args = {mode, std::move(n), token},
                       .readiness = std::move(readiness)};
}

StartError start_failure(ServerOptions options) {
  try {
    Server server{std::move(options)};
  } catch (const StartError& e) {
    return e;
  }
  throw std::logic_error{"the server started although it should not have"};
}

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM").
std::uint64_t status_bytes(const std::string& field) {
  std::ifstream status{"/proc/self/status"};
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

// Issue 13 item 1: a 40 kB ready line with ".*" in the pattern crashed the test process
// (std::regex's recursion); RE2 matches it.
TEST(FaultReadinessText, OutputLineMatchesA40kBLine) {
  const std::string token = unique_token();
  Server server{
      child("long-line", Readiness::output_line("listening on .* at (\\S+)"), token, "40000")};
  EXPECT_EQ(server.endpoint().address(), "127.0.0.1:5");
  EXPECT_GT(server.endpoint().message().at("line").get<std::string>().size(), 40000u);
  EXPECT_TRUE(server.stop().ok());
}

// Issue 13 item 1: "(a+)+$" (here "(?:a+)+$": the address comes from the options) against
// 200,000 'a's and a 'b' overflowed the stack; against 32 'a's and a 'b' it had not returned
// after 45 s. Both lines are now rejected at once and the
// next line ("aaa") matches.
TEST(FaultReadinessText, OutputLineSurvivesACatastrophicPattern) {
  for (const char* n : {"32", "200000"}) {
    const std::string token = unique_token();
    ServerOptions options =
        child("as-then-b", Readiness::output_line("^(?:a+)+$", "127.0.0.1:5"), token, n);
    options.ready_timeout = 20s;  // only catches a hang
    Server server{std::move(options)};
    EXPECT_EQ(server.endpoint().message().at("line"), "aaa") << n;
    EXPECT_TRUE(server.stop().ok());
  }
}

// Issue 13 item 10: the ready line inside a 20 MiB burst was missed (a false ready_timeout), and
// never seen with output_tail_bytes = 0.
TEST(FaultReadinessText, OutputLineFindsTheLineInA20MiBBurstWhateverIsKept) {
  for (std::size_t tail : {std::size_t{64 * 1024}, std::size_t{0}}) {
    const std::string token = unique_token();
    ServerOptions options =
        child("burst", Readiness::output_line("listening on (\\S+)"), token, "10");
    options.output_tail_bytes = tail;
    options.ready_timeout = 60s;  // only catches a hang
    Server server{std::move(options)};
    EXPECT_EQ(server.endpoint().address(), "127.0.0.1:7") << tail;
    EXPECT_TRUE(server.stop().ok());
  }
}

// Issue 13 item 6: 64 KiB every 2 ms without a newline grew the test process from 4 MB to
// 267 MB; the line is now scanned in a bounded window.
TEST(FaultReadinessText, OutputLineKeepsMemoryBoundedForAnEndlessLine) {
  const std::string token = unique_token();
  const std::uint64_t before = status_bytes("VmRSS");
  ServerOptions options = child("endless", Readiness::output_line("never"), token);
  options.ready_timeout =
      1s;  // the child writes as fast as the pipe takes it meanwhile (100s of MiB)
  const StartError e = start_failure(std::move(options));
  EXPECT_EQ(e.reason(), StartError::Reason::ready_timeout);
  const std::uint64_t peak = status_bytes("VmHWM");
  EXPECT_LT(peak - std::min(peak, before), 32u << 20)
      << "VmRSS before " << before << ", VmHWM after " << peak;
  EXPECT_TRUE(survivors_with(token).empty());
}

// Outside-tester pass: LineScanner::finish() was never called, so a last line without a newline
// never counted, though the scanner's contract says it does at the end of the stream. A server
// that prints "ready on 127.0.0.1:9" without a newline and closes its stdout is ready now.
TEST(FaultReadinessText, OutputLineTakesALastLineWithoutNewlineAtTheEndOfTheStream) {
  Server server{{.executable = "/bin/sh",
                 .args = {"-c", "printf 'ready on 127.0.0.1:9'; exec 1>&- 2>&-; exec sleep 1000"},
                 .ready_timeout = 60s,
                 .expected_exit = procfix::ExpectedExit::signal(SIGTERM),
                 .readiness = Readiness::output_line("ready on (\\S+)")}};
  EXPECT_EQ(server.endpoint().address(), "127.0.0.1:9");
  EXPECT_EQ(server.endpoint().message()["line"], "ready on 127.0.0.1:9");
  EXPECT_TRUE(server.stop().ok());
}

// Issue 13 item 2: a matched line with invalid UTF-8 made endpoint().message().dump() throw.
TEST(FaultReadinessText, OutputLineStoresInvalidUtf8AsValid) {
  const std::string token = unique_token();
  Server server{child("utf8-line", Readiness::output_line("ready at (\\S+)"), token)};
  std::string dumped;
  EXPECT_NO_THROW(dumped = server.endpoint().message().dump());
  EXPECT_EQ(server.endpoint().message().at("line"),
            "\xEF\xBF\xBD\xEF\xBF\xBD ready at 127.0.0.1:5");
  EXPECT_TRUE(server.stop().ok());
}

// Issue 16 item 4: the address from two capture groups (host, port).
TEST(FaultReadinessText, OutputLineTakesHostAndPortFromTwoGroups) {
  const Readiness readiness = Readiness::output_line(R"(host=(\S+) port=(\d+))");
  Server v4{child("groups-v4", readiness, unique_token())};
  EXPECT_EQ(v4.endpoint().address(), "127.0.0.1:4242");
  Server v6{child("groups-v6", readiness, unique_token())};
  EXPECT_EQ(v6.endpoint().address(), "[::1]:4242");
  EXPECT_EQ(v6.endpoint().host(), "::1");
  EXPECT_TRUE(v4.stop().ok());
  EXPECT_TRUE(v6.stop().ok());
}

// Issue 16 item 4: the timeout message names stdout buffering when the server wrote nothing to
// stdout.
TEST(FaultReadinessText, OutputLineTimeoutNamesStdoutBuffering) {
  const std::string token = unique_token();
  ServerOptions options = child(
      "buffered",
      Readiness::output_line("listening on", "127.0.0.1:5", Readiness::Stream::stdout_only), token);
  options.ready_timeout = 500ms;
  const StartError e = start_failure(std::move(options));
  EXPECT_EQ(e.reason(), StartError::Reason::ready_timeout);
  EXPECT_THAT(e.what(), HasSubstr("the server wrote nothing to stdout"));
  EXPECT_THAT(e.what(), HasSubstr("block-buffered"));
  EXPECT_TRUE(survivors_with(token).empty());
}

// Issue 13 item 1: the pattern is RE2 syntax, checked before the spawn (ECMAScript's lookahead
// was accepted before).
TEST(FaultReadinessText, OutputLinePatternIsRe2Syntax) {
  for (const char* pattern : {"listening (?=on)", "(a)(b)(c)", "listening on ("}) {
    try {
      Server server{child("groups-v4", Readiness::output_line(pattern), unique_token())};
      ADD_FAILURE() << pattern << " was accepted";
    } catch (const OptionsError& e) {
      EXPECT_THAT(e.what(), HasSubstr("is not a valid regular expression (RE2 syntax)"));
    }
  }
}

// Issue 13 item 17: an object followed by a NUL and junk, duplicate keys, and the addresses
// "a b:1" and "[zz]:80" were accepted.
TEST(FaultReadinessText, ReadyFdRejectsJunkDuplicateKeysAndBadAddresses) {
  const struct {
    const char* mode;
    const char* words;
  } cases[] = {
      {"ready-nul", "malformed readiness message (a NUL byte at byte 25)"},
      {"ready-dup", "malformed readiness message (duplicate key \"address\")"},
      {"ready-space", "'a b' is not a numeric IPv4 address or a DNS name"},
      {"ready-zz", "'zz' is not a numeric IPv6 address"},
  };
  for (const auto& c : cases) {
    const std::string token = unique_token();
    const StartError e = start_failure(child(c.mode, Readiness::ready_fd(), token));
    EXPECT_EQ(e.reason(), StartError::Reason::malformed_message) << c.mode;
    EXPECT_THAT(e.what(), HasSubstr(c.words));
    EXPECT_TRUE(survivors_with(token).empty());
  }
}

// Issue 13 item 2: the quote of a partial readiness line is valid UTF-8.
TEST(FaultReadinessText, ReadyFdQuotesAPartialLineAsValidUtf8) {
  const std::string token = unique_token();
  const StartError e = start_failure(child("ready-partial", Readiness::ready_fd(), token));
  EXPECT_EQ(e.reason(), StartError::Reason::closed_without_message);
  EXPECT_THAT(e.what(), HasSubstr("after 3 bytes without a newline: '\xEF\xBF\xBD\xEF\xBF\xBD{'"));
  EXPECT_TRUE(is_valid_utf8(e.what()));
  EXPECT_TRUE(survivors_with(token).empty());
}

// Issue 13 item 2: a STATUS= text with invalid UTF-8 is stored valid.
TEST(FaultReadinessText, NotifySocketStoresStatusAsValidUtf8) {
  Server server{child("notify-status", Readiness::notify_socket("127.0.0.1:5"), unique_token())};
  EXPECT_NO_THROW((void)server.endpoint().message().dump());
  EXPECT_EQ(server.endpoint().message().at("status"), "\xEF\xBF\xBD bad");
  EXPECT_TRUE(server.stop().ok());
}

}  // namespace
}  // namespace procfix::detail
