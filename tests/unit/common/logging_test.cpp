#include "common/logging.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

using testing::read_file;
using testing::TempDir;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

class LoggingTest : public ::testing::Test {
 protected:
  void TearDown() override { log::init(log::Format::kText, log::Level::kInfo); }
  TempDir dir_;
};

TEST_F(LoggingTest, JsonLinesAreValidJsonWithFields) {
  auto path = (dir_ / "log.jsonl").string();
  ASSERT_TRUE(log::init_file(path, log::Format::kJson, log::Level::kInfo).is_ok());
  log::write(log::Level::kInfo, "request \"quoted\"\nnewline",
             {{"method", std::string_view("GET")}, {"status", int64_t{200}}, {"ms", 1.5}});
  log::info("plain {}", 42);
  log::flush();
  auto lines = lines_of(read_file(path));
  ASSERT_EQ(lines.size(), 2u);
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "request \"quoted\"\nnewline");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["status"], 200);
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 1.5);
  EXPECT_TRUE(j.contains("ts"));
  EXPECT_EQ(nlohmann::json::parse(lines[1])["msg"], "plain 42");
}

TEST_F(LoggingTest, LevelsFilter) {
  auto path = (dir_ / "log.txt").string();
  ASSERT_TRUE(log::init_file(path, log::Format::kText, log::Level::kWarn).is_ok());
  log::info("hidden");
  log::warn("shown {}", "warn");
  log::error("shown error");
  log::flush();
  auto lines = lines_of(read_file(path));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(" warn shown warn"), std::string::npos) << lines[0];
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kError));
}

TEST_F(LoggingTest, AnnounceShowsAtAnyLevelButOff) {
  auto path = (dir_ / "log.txt").string();
  ASSERT_TRUE(log::init_file(path, log::Format::kText, log::Level::kError).is_ok());
  log::info("hidden");
  log::announce("listening on http://{}:{}", "127.0.0.1", 8080);
  log::flush();
  auto lines = lines_of(read_file(path));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("listening on http://127.0.0.1:8080"), std::string::npos);

  auto off = (dir_ / "off.txt").string();
  ASSERT_TRUE(log::init_file(off, log::Format::kText, log::Level::kOff).is_ok());
  log::announce("nothing");
  log::flush();
  EXPECT_TRUE(read_file(off).empty());
}

TEST_F(LoggingTest, TextFieldsQuotedWhenNeeded) {
  auto path = (dir_ / "log.txt").string();
  ASSERT_TRUE(log::init_file(path, log::Format::kText, log::Level::kInfo).is_ok());
  log::write(log::Level::kInfo, "request",
             {{"path", std::string_view("/a b")}, {"route", std::string_view("/healthz")}});
  log::flush();
  auto text = read_file(path);
  EXPECT_NE(text.find("path=\"/a b\""), std::string::npos) << text;
  EXPECT_NE(text.find("route=/healthz"), std::string::npos) << text;
}

TEST(LoggingParseTest, LevelsAndFormats) {
  EXPECT_EQ(*log::parse_level("debug"), log::Level::kDebug);
  EXPECT_EQ(log::parse_level("verbose").status().field(), "log_level");
  EXPECT_EQ(*log::parse_format("json"), log::Format::kJson);
  EXPECT_FALSE(log::parse_format("yaml").is_ok());
}

}  // namespace
}  // namespace atelier
