// A seeded fuzzer (a generator in a gtest, run in CI) for the readiness text components: the
// readiness-line parser, the output-line scanner, the address parser and the UTF-8 sanitiser.
// Each test runs a fixed number of generated cases (well under 5 s in a Debug build) and checks
// invariants: no crash, no hang, results that agree with an independent reference.
//
// The seed is printed; PROCFIX_FUZZ_SEED=<n> replays one, PROCFIX_FUZZ_SCALE=<k> runs k times as
// many cases.
#include <re2/re2.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detail/address.hpp"
#include "detail/line_scanner.hpp"
#include "detail/ready_message.hpp"
#include "detail/text.hpp"
#include "procfix/fixtures/endpoint.hpp"
#include "procfix/fixtures/errors.hpp"

namespace procfix::detail {
namespace {

std::uint64_t fuzz_seed() {
  if (const char* text = std::getenv("PROCFIX_FUZZ_SEED")) return std::strtoull(text, nullptr, 10);
  return std::random_device{}();
}

int scaled(int cases) {
  const char* text = std::getenv("PROCFIX_FUZZ_SCALE");
  return text != nullptr ? cases * std::max(1, std::atoi(text)) : cases;
}

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : random_{seed} {}

  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>{0, n - 1}(random_);
  }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
  char byte() { return static_cast<char>(below(256)); }
  template <typename T, std::size_t N>
  const T& pick(const T (&items)[N]) {
    return items[below(N)];
  }

  std::string bytes(std::size_t max) {
    std::string out(below(max + 1), '\0');
    for (char& c : out) c = byte();
    return out;
  }

  // Mostly text, with the bytes that make UTF-8 and JSON interesting.
  std::string texty(std::size_t max) {
    static const std::string_view pieces[] = {"a",
                                              "Z",
                                              "0",
                                              "9",
                                              " ",
                                              ":",
                                              ".",
                                              "-",
                                              "[",
                                              "]",
                                              "{",
                                              "}",
                                              "\"",
                                              "\\",
                                              ",",
                                              "/",
                                              "@",
                                              "%",
                                              "\n",
                                              "\r",
                                              "\t",
                                              std::string_view{"\0", 1},
                                              "\x80",
                                              "\xbf",
                                              "\xc0",
                                              "\xc2",
                                              "\xc3\xa9",
                                              "\xe2\x82\xac",
                                              "\xe2\x82",
                                              "\xed\xa0\x80",
                                              "\xf0\x9f\x98\x80",
                                              "\xf4\x90",
                                              "\xff",
                                              "\\u0000",
                                              "\\ud800",
                                              "::1",
                                              "127.0.0.1",
                                              "localhost",
                                              "listening on ",
                                              "ready"};
    std::string out;
    const std::size_t n = below(max + 1);
    while (out.size() < n) out += pick(pieces);
    return out;
  }

  // Applies a few random edits: insert, delete, replace, duplicate a slice.
  std::string mutate(std::string text) {
    const std::size_t edits = 1 + below(4);
    for (std::size_t e = 0; e < edits; ++e) {
      const std::size_t at = text.empty() ? 0 : below(text.size() + 1);
      switch (below(4)) {
        case 0:
          text.insert(at, texty(6));
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1 + below(4));
          break;
        case 2:
          if (at < text.size()) text[at] = byte();
          break;
        default:
          if (at < text.size()) text.insert(at, text.substr(at, 1 + below(8)));
          break;
      }
    }
    return text;
  }

  // A JSON value, nested up to `depth`.
  std::string json_value(int depth) {
    switch (depth > 0 ? below(6) : below(4)) {
      case 0:
        return std::to_string(below(100000));
      case 1:
        return pick({"true", "false", "null", "-1.5e3"});
      case 2:
      case 3:
        return std::string{"\""} +
               pick({"x", "127.0.0.1:80", "[::1]:1", "/tmp/s", "\xc3\xa9", "\\u00e9", ""}) + "\"";
      case 4: {
        std::string out = "[";
        for (std::size_t i = 0, n = below(4); i < n; ++i)
          out += (i ? "," : "") + json_value(depth - 1);
        return out + "]";
      }
      default:
        return json_object(depth - 1);
    }
  }
  std::string json_object(int depth) {
    static const char* keys[] = {"address", "pid", "a", "b", "line", "\xc3\xa9", ""};
    std::string out = "{";
    for (std::size_t i = 0, n = below(5); i < n; ++i) {
      out.append(i ? "," : "")
          .append("\"")
          .append(pick(keys))
          .append("\":")
          .append(json_value(depth));
    }
    return out + "}";
  }

 private:
  std::mt19937_64 random_;
};

// An independent UTF-8 validity check: RE2 over bytes (Latin-1), the well-formed byte sequences
// of Unicode's Table 3-7.
bool reference_valid_utf8(std::string_view bytes) {
  static const re2::RE2 well_formed{
      "(?:[\\x00-\\x7F]|[\\xC2-\\xDF][\\x80-\\xBF]|\\xE0[\\xA0-\\xBF][\\x80-\\xBF]|"
      "[\\xE1-\\xEC\\xEE\\xEF][\\x80-\\xBF]{2}|\\xED[\\x80-\\x9F][\\x80-\\xBF]|"
      "\\xF0[\\x90-\\xBF][\\x80-\\xBF]{2}|[\\xF1-\\xF3][\\x80-\\xBF]{3}|\\xF4[\\x80-\\x8F][\\x80-"
      "\\xBF]{2})*",
      re2::RE2::Latin1};
  return re2::RE2::FullMatch(re2::StringPiece{bytes.data(), bytes.size()}, well_formed);
}

class FaultFuzzReadiness : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = fuzz_seed();
    RecordProperty("seed", std::to_string(seed_));
    std::printf("seed %llu (PROCFIX_FUZZ_SEED replays it)\n",
                static_cast<unsigned long long>(seed_));
  }
  std::uint64_t seed_ = 0;
};

// Issue 13 item 2 (fuzzed): to_valid_utf8 always yields valid UTF-8, keeps valid input, and
// agrees with an independent validator.
TEST_F(FaultFuzzReadiness, Utf8Sanitiser) {
  Generator g{seed_};
  for (int i = 0; i < scaled(40000); ++i) {
    const std::string input = g.chance(50) ? g.bytes(40) : g.texty(40);
    const bool valid = reference_valid_utf8(input);
    ASSERT_EQ(is_valid_utf8(input), valid) << ::testing::PrintToString(input);
    const std::string output = to_valid_utf8(input);
    ASSERT_TRUE(reference_valid_utf8(output)) << ::testing::PrintToString(input);
    ASSERT_LE(output.size(), 3 * input.size());
    if (valid) {
      ASSERT_EQ(output, input);
    }
    ASSERT_EQ(to_valid_utf8(output), output);
    ASSERT_TRUE(reference_valid_utf8(quote_for_message(input, g.below(50))));
  }
}

// Issue 13 item 17 (fuzzed): the readiness-line parser never crashes, accepts only a JSON object
// without NUL bytes, without duplicate keys and with nothing after it, and what it accepts can
// be dumped (valid UTF-8) and parsed back to the same value.
TEST_F(FaultFuzzReadiness, ReadyMessageParser) {
  Generator g{seed_};
  for (int i = 0; i < scaled(20000); ++i) {
    std::string line = g.json_object(3);
    if (g.chance(70)) line = g.mutate(line);
    if (g.chance(3)) line = std::string(g.below(200), '[') + line;
    const ReadyMessage parsed = parse_ready_message(line);
    ASSERT_TRUE(reference_valid_utf8(parsed.describe()));
    ASSERT_LE(parsed.quoted.size(), 3 * 80 + 5);
    if (!parsed.ok()) {
      ASSERT_TRUE(parsed.message.is_null());
      continue;
    }
    ASSERT_TRUE(parsed.message.is_object()) << line;
    ASSERT_EQ(line.find('\0'), std::string::npos);
    ASSERT_TRUE(reference_valid_utf8(line));
    std::string dumped;
    ASSERT_NO_THROW(dumped = parsed.message.dump());
    // No key was dropped: with duplicates, the parsed-back object would be smaller than the text.
    const ReadyMessage again = parse_ready_message(dumped);
    ASSERT_TRUE(again.ok()) << dumped;
    ASSERT_EQ(again.message, parsed.message);
    try {
      const Endpoint endpoint{parsed.message};
      ASSERT_NO_THROW((void)endpoint.message().dump());
    } catch (const Error& e) {  // a bad address: procfix::Error, valid UTF-8
      ASSERT_TRUE(reference_valid_utf8(e.what()));
    }
  }
}

// Issue 13 item 17 (fuzzed): the address parser never crashes; what it accepts is one of the
// documented forms, and a TCP address formats back to the same text.
TEST_F(FaultFuzzReadiness, AddressParser) {
  Generator g{seed_};
  static const char* seeds[] = {"127.0.0.1:80", "[::1]:443",     "localhost:1",   "/tmp/x.sock",
                                "@n",           "a.b-c.d:65535", "[fe80::1%lo]:8"};
  for (int i = 0; i < scaled(50000); ++i) {
    const std::string text = g.chance(70) ? g.mutate(g.pick(seeds)) : g.texty(24);
    std::string why;
    const std::optional<Address> address = parse_address(text, why);
    if (!address) {
      ASSERT_FALSE(why.empty());
      ASSERT_TRUE(reference_valid_utf8(why));
      try {
        Endpoint endpoint{nlohmann::json{{"address", text}}};
        FAIL() << "Endpoint accepted what parse_address rejected: "
               << ::testing::PrintToString(text);
      } catch (const Error& e) {
        ASSERT_TRUE(reference_valid_utf8(e.what()));
      }
      continue;
    }
    ASSERT_TRUE(reference_valid_utf8(text));
    ASSERT_EQ(text.find('\0'), std::string::npos);
    switch (address->kind) {
      case Address::Kind::unix_path:
        ASSERT_NE(text.find('/'), std::string::npos);
        break;
      case Address::Kind::unix_abstract:
        ASSERT_EQ(text.front(), '@');
        break;
      case Address::Kind::ipv6:
        ASSERT_EQ("[" + address->host + "]:" + std::to_string(address->port), text);
        break;
      default:
        ASSERT_NE(address->port, 0);
        ASSERT_EQ(address->host.find_first_of(" :[]/\\%"), std::string::npos) << text;
        ASSERT_EQ(address->host + ":" + std::to_string(address->port), text);
        break;
    }
  }
}

// Issue 13 items 1, 6, 10 (fuzzed): the scanner, fed a stream in random chunks, finds the same
// first matching line as a reference that splits the whole stream into lines first; lines are
// bounded and valid UTF-8; pathological patterns and long lines finish.
TEST_F(FaultFuzzReadiness, OutputLineScanner) {
  Generator g{seed_};
  static const char* literals[] = {"ready", "listening on", "é", "a"};
  static const char* patterns[] = {"(a+)+$",      "(.*)*x",           "(a|aa)*b",
                                   "^(\\S+)$",    "on (\\S+):(\\d+)", "(?i)READY",
                                   "\\bready\\b", "(x+x+)+y",         "[^\\n]*z$"};
  constexpr std::size_t kMax = 256;  // a small bound, so that overlong lines are frequent
  for (int i = 0; i < scaled(8000); ++i) {
    // The stream: random lines, some long, some containing a literal.
    std::string stream;
    for (std::size_t l = 0, lines = g.below(12); l < lines; ++l) {
      stream +=
          g.chance(10) ? std::string(g.below(3 * kMax), g.pick({'a', 'x', ' '})) : g.texty(40);
      if (g.chance(30)) stream += g.pick(literals);
      stream += "\n";
    }
    if (g.chance(20)) stream += g.texty(kMax * 2);  // a last line without a newline

    const bool literal = g.chance(50);
    const std::string needle = g.pick(literals);
    const std::string pattern = literal ? re2::RE2::QuoteMeta(needle) : g.pick(patterns);
    std::string error;
    const auto compiled = LinePattern::compile(pattern, error);
    ASSERT_NE(compiled, nullptr) << pattern << ": " << error;

    // Fed in random chunks ...
    LineScanner chunked{compiled, kMax};
    for (std::size_t at = 0; at < stream.size();) {
      const std::size_t n = 1 + g.below(g.chance(50) ? 8 : 600);
      if (!chunked.feed(std::string_view{stream}.substr(at, n))) break;
      at += n;
    }
    chunked.finish();
    // ... and all at once agree.
    LineScanner whole{compiled, kMax};
    whole.feed(stream);
    whole.finish();
    ASSERT_EQ(chunked.matched(), whole.matched())
        << pattern << " in " << ::testing::PrintToString(stream);
    if (whole.matched()) {
      ASSERT_EQ(chunked.match()->line, whole.match()->line);
      ASSERT_EQ(chunked.match()->address, whole.match()->address);
      ASSERT_TRUE(reference_valid_utf8(whole.match()->line));
      ASSERT_TRUE(reference_valid_utf8(whole.match()->address));
      ASSERT_LE(whole.match()->line.size(), 3 * kMax);
    }
    if (!literal) continue;
    // Reference for a literal: the first line (its first kMax bytes, without a '\r' at the end
    // of a line within the bound, sanitised) that contains it.
    std::optional<std::string> expected;
    for (std::size_t begin = 0; begin < stream.size() && !expected;) {
      std::size_t end = stream.find('\n', begin);
      if (end == std::string::npos) end = stream.size();
      std::string line = stream.substr(begin, std::min(end - begin, kMax));
      if (end - begin <= kMax && !line.empty() && line.back() == '\r') line.pop_back();
      line = to_valid_utf8(line);
      if (line.find(needle) != std::string::npos) expected = line;
      begin = end + 1;
    }
    ASSERT_EQ(whole.matched(), expected.has_value())
        << needle << " in " << ::testing::PrintToString(stream);
    if (expected) {
      ASSERT_EQ(whole.match()->line, *expected);
    }
  }
}

}  // namespace
}  // namespace procfix::detail
