// The `atelier` binary as an operator runs it: flags, configuration errors, logs, signals.
#include "tests/support/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "server/store/migrations.h"
#include "server/store/sqlite.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::Connection;
using testing::http_request;
using testing::make_request;
using testing::parse_listening_port;
using testing::run_program;
using testing::TempDir;
using testing::write_file;

const std::string kBin = ATELIER_BIN;

std::vector<std::string> serve_args(const TempDir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {kBin,         "serve",
                                   "--port",     "0",
                                   "--data-dir", (dir / "data").string(),
                                   "--web-root", (dir / "no-web").string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(ProcessTest, HelpDocumentsEveryOption) {
  TempDir dir;
  auto [code, out] = run_program({kBin, "serve", "--help"}, dir / "out.txt");
  EXPECT_EQ(code, 0);
  for (const char* flag :
       {"--host", "--port", "--data-dir", "--config", "--log-format", "--log-level", "--io-threads",
        "--max-body-bytes", "--max-header-bytes", "--header-timeout-ms", "--read-timeout-ms",
        "--idle-timeout-ms", "--shutdown-timeout-ms", "--web-root", "--cors-origins",
        "ATELIER_PORT", "default 8080", "default 127.0.0.1"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag << "\n" << out;
  }
}

TEST(ProcessTest, ServesAndStopsCleanlyOnSigterm) {
  TempDir dir;
  ChildProcess child(serve_args(dir), dir / "out.txt");
  auto out = child.wait_for_output("listening on http://", 20s);
  ASSERT_TRUE(out) << child.output();
  uint16_t port = parse_listening_port(*out);
  ASSERT_NE(port, 0);

  auto health = http_request(port, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = http_request(port, "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto page = http_request(port, "GET", "/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("npm"), std::string::npos);  // the built-in "how to build" page

  child.signal(SIGTERM);
  auto code = child.wait(10s);
  ASSERT_TRUE(code) << "did not exit after SIGTERM";
  EXPECT_EQ(*code, 0) << child.output();
  std::string log = child.output();
  // Every request is logged with method, path, status and duration.
  EXPECT_NE(log.find("method=GET path=/healthz route=/healthz status=200 duration_ms="),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("shut down in"), std::string::npos);
}

TEST(ProcessTest, SigintWithOpenConnectionsExitsZero) {
  TempDir dir;
  ChildProcess child(serve_args(dir, {"--shutdown-timeout-ms", "3000"}), dir / "out.txt");
  auto out = child.wait_for_output("listening on http://", 20s);
  ASSERT_TRUE(out) << child.output();
  uint16_t port = parse_listening_port(*out);
  Connection idle(port);
  ASSERT_TRUE(idle.send(make_request("GET", "/healthz")));
  ASSERT_TRUE(idle.read_response());
  Connection half(port);
  ASSERT_TRUE(half.send("GET /healthz HTTP/1.1\r\n"));  // a request that never completes

  auto t0 = std::chrono::steady_clock::now();
  child.signal(SIGINT);
  EXPECT_TRUE(idle.closed_within(3s));
  auto code = child.wait(10s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << child.output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 6s);
  EXPECT_TRUE(half.closed_within(1s));
}

TEST(ProcessTest, JsonLogLinesParse) {
  TempDir dir;
  ChildProcess child(serve_args(dir, {"--log-format", "json"}), dir / "out.txt");
  auto out = child.wait_for_output("listening on http://", 20s);
  ASSERT_TRUE(out) << child.output();
  uint16_t port = parse_listening_port(*out);
  ASSERT_TRUE(http_request(port, "GET", "/api/v1/info?token=secret"));
  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(10s), 0);
  std::stringstream ss(child.output());
  std::string line;
  int requests = 0;
  while (std::getline(ss, line)) {
    auto j = nlohmann::json::parse(line);  // throws (fails the test) on a non-JSON line
    if (j["msg"] == "request") {
      ++requests;
      EXPECT_EQ(j["path"], "/api/v1/info");
      EXPECT_EQ(j["status"], 200);
      EXPECT_TRUE(j.contains("duration_ms"));
    }
  }
  EXPECT_EQ(requests, 1);
  EXPECT_EQ(child.output().find("secret"), std::string::npos);  // query strings not logged
}

TEST(ProcessTest, ConfigErrorsStopStartupNamingTheKey) {
  TempDir dir;
  write_file(dir / "bad.toml", "port = 8080\nlisten_adress = \"x\"\n");
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{kBin, "serve", "--port", "http"}, {}, "'port'"},
      {{kBin, "serve", "--config", (dir / "bad.toml").string()}, {}, "listen_adress"},
      {{kBin, "serve", "--log-format", "xml"}, {}, "log_format"},
      {{kBin, "serve"}, {{"ATELIER_MAX_BODY_BYTES", "-5"}}, "ATELIER_MAX_BODY_BYTES"},
      {{kBin, "serve", "--no-such-flag"}, {}, "no-such-flag"},
  };
  for (const auto& c : cases) {
    auto [code, out] = run_program(c.args, dir / "out.txt", c.env);
    EXPECT_NE(code, 0) << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << out;
    std::filesystem::remove(dir / "out.txt");
  }
}

TEST(ProcessTest, ConfigFileAppliesAndFlagsWin) {
  TempDir dir;
  write_file(dir / "a.toml",
             "port = 1\nlog_format = \"json\"\ndata_dir = \"" + (dir / "data").string() + "\"\n");
  ChildProcess child({kBin, "serve", "--config", (dir / "a.toml").string(), "--port", "0",
                      "--web-root", (dir / "none").string()},
                     dir / "out.txt");
  auto out = child.wait_for_output("listening on http://", 20s);
  ASSERT_TRUE(out) << child.output();
  EXPECT_NE(out->find("\"level\":\"info\""), std::string::npos);  // json from the file
  EXPECT_TRUE(std::filesystem::exists(dir / "data" / "atelier.db"));
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait(10s), 0);
}

TEST(ProcessTest, NewerDatabaseSchemaIsRefused) {
  TempDir dir;
  std::filesystem::create_directories(dir / "data");
  {
    auto db = store::Db::open(dir / "data" / "atelier.db", store::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(db.is_ok());
    ASSERT_TRUE(db->exec("CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT "
                         "NOT NULL, applied_at TEXT NOT NULL);"
                         "INSERT INTO schema_migrations VALUES(9999, '9999_future.sql', 'x');")
                    .is_ok());
  }
  auto [code, out] = run_program(serve_args(dir), dir / "out.txt");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("newer"), std::string::npos) << out;
  EXPECT_EQ(out.find("listening on"), std::string::npos);
}

TEST(ProcessTest, SecondServerOnSameDataDirIsRefused) {
  TempDir dir;
  ChildProcess first(serve_args(dir), dir / "first.txt");
  ASSERT_TRUE(first.wait_for_output("listening on http://", 20s)) << first.output();
  auto [code, out] = run_program(serve_args(dir), dir / "second.txt");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("in use by another atelier process"), std::string::npos) << out;
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait(10s), 0);
}

TEST(ProcessTest, PortInUseIsReported) {
  TempDir dir, dir2;
  ChildProcess first(serve_args(dir), dir / "first.txt");
  auto out = first.wait_for_output("listening on http://", 20s);
  ASSERT_TRUE(out);
  std::string port = std::to_string(parse_listening_port(*out));
  auto [code, second] = run_program(
      {kBin, "serve", "--port", port, "--data-dir", (dir2 / "data").string()}, dir2 / "out.txt");
  EXPECT_EQ(code, 1);
  EXPECT_NE(second.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << second;
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait(10s), 0);
}

}  // namespace
}  // namespace atelier
