#include "common/config.h"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace atelier {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(ConfigTest, DefaultsWithNoSources) {
  auto cfg = load_config({});
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->host, "127.0.0.1");
  EXPECT_EQ(cfg->port, 8080);
  EXPECT_EQ(cfg->data_dir, "./data");
  EXPECT_EQ(cfg->max_body_bytes, 1 << 20);
  EXPECT_EQ(cfg->log_format, log::Format::kText);
  EXPECT_TRUE(cfg->cors_origins.empty());
}

TEST(ConfigTest, PrecedenceDefaultsFileEnvFlags) {
  TempDir dir;
  write_file(dir / "a.toml",
             "port = 9000\nhost = \"0.0.0.0\"\nlog_format = \"json\"\nio_threads = 3\n");
  ConfigSources src;
  src.file = dir / "a.toml";
  src.env = {{"ATELIER_PORT", "9100"}, {"ATELIER_HOST", "127.0.0.2"}};
  src.flags = {{"port", "9200"}};
  auto cfg = load_config(src);
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->port, 9200);                      // flag beats env and file
  EXPECT_EQ(cfg->host, "127.0.0.2");               // env beats file
  EXPECT_EQ(cfg->log_format, log::Format::kJson);  // file beats default
  EXPECT_EQ(cfg->io_threads, 3);
  EXPECT_EQ(cfg->config_file, dir / "a.toml");
}

TEST(ConfigTest, ConfigFileFromFlagOrEnv) {
  TempDir dir;
  write_file(dir / "env.toml", "port = 1111\n");
  write_file(dir / "flag.toml", "port = 2222\n");
  ConfigSources src;
  src.env = {{"ATELIER_CONFIG", (dir / "env.toml").string()}};
  auto from_env = load_config(src);
  ASSERT_TRUE(from_env.is_ok());
  EXPECT_EQ(from_env->port, 1111);
  src.flags = {{"config", (dir / "flag.toml").string()}};
  auto from_flag = load_config(src);
  ASSERT_TRUE(from_flag.is_ok());
  EXPECT_EQ(from_flag->port, 2222);
}

TEST(ConfigTest, UnknownFileKeyIsNamed) {
  TempDir dir;
  write_file(dir / "c.toml", "port = 1\nprot = 2\n");
  auto cfg = load_config({.file = dir / "c.toml"});
  ASSERT_FALSE(cfg.is_ok());
  EXPECT_EQ(cfg.status().field(), "prot");
  EXPECT_NE(cfg.status().message().find("unknown key 'prot'"), std::string::npos);
}

TEST(ConfigTest, WrongTypeInFileIsNamed) {
  TempDir dir;
  write_file(dir / "c.toml", "port = \"eighty\"\n");
  auto cfg = load_config({.file = dir / "c.toml"});
  ASSERT_FALSE(cfg.is_ok());
  EXPECT_EQ(cfg.status().field(), "port");
  EXPECT_NE(cfg.status().message().find("expected an integer"), std::string::npos);
}

TEST(ConfigTest, SyntaxErrorNamesFileAndLine) {
  TempDir dir;
  write_file(dir / "c.toml", "port = 1\nhost = \n");
  auto cfg = load_config({.file = dir / "c.toml"});
  ASSERT_FALSE(cfg.is_ok());
  EXPECT_NE(cfg.status().message().find("line 2"), std::string::npos) << cfg.status().message();
}

TEST(ConfigTest, MissingFileIsAnError) {
  auto cfg = load_config({.file = "/nonexistent/atelier.toml"});
  ASSERT_FALSE(cfg.is_ok());
  EXPECT_EQ(cfg.status().field(), "config");
}

TEST(ConfigTest, InvalidValuesNameTheKeyInEveryLayer) {
  struct Case {
    ConfigSources src;
    std::string field;
    std::string fragment;
  };
  std::vector<Case> cases = {
      {{.flags = {{"port", "70000"}}}, "port", "out of range"},
      {{.flags = {{"port", "80x"}}}, "port", "not an integer"},
      {{.env = {{"ATELIER_IO_THREADS", "0"}}}, "io_threads", "environment ATELIER_IO_THREADS"},
      {{.flags = {{"log_format", "xml"}}}, "log_format", "text|json"},
      {{.flags = {{"log_level", "loud"}}}, "log_level", "trace|debug"},
      {{.flags = {{"cors_origins", "example.com"}}}, "cors_origins", "not an origin"},
      {{.flags = {{"max_body_bytes", "0"}}}, "max_body_bytes", "out of range"},
      {{.flags = {{"host", ""}}}, "host", "must not be empty"},
      {{.flags = {{"nope", "1"}}}, "nope", "unknown option"},
      {{.flags = {{"sync_mode", "fast"}}}, "sync_mode", "full|normal"},
      {{.flags = {{"workers", "gpu"}}}, "workers", "cpu, cuda:N, auto"},
      {{.flags = {{"workers", "cuda:x"}}}, "workers", "cpu, cuda:N, auto"},
      {{.flags = {{"enable_null_model", "maybe"}}}, "enable_null_model", "true|false"},
      {{.flags = {{"job_max_attempts", "0"}}}, "job_max_attempts", "out of range"},
      {{.flags = {{"trusted_proxies", "10.0.0.0/8,proxy.local"}}},
       "trusted_proxies",
       "not an address or CIDR"},
      {{.flags = {{"max_connections_per_ip", "0"}}}, "max_connections_per_ip", "out of range"},
  };
  for (const auto& c : cases) {
    auto cfg = load_config(c.src);
    ASSERT_FALSE(cfg.is_ok()) << c.field;
    EXPECT_EQ(cfg.status().field(), c.field);
    EXPECT_NE(cfg.status().message().find(c.fragment), std::string::npos) << cfg.status().message();
  }
}

TEST(ConfigTest, ListsFromFileAndEnv) {
  TempDir dir;
  write_file(dir / "c.toml", "cors_origins = [\"https://a.example\", \"http://b.example:8080\"]\n");
  auto cfg = load_config({.file = dir / "c.toml"});
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->cors_origins,
            (std::vector<std::string>{"https://a.example", "http://b.example:8080"}));
  auto env =
      load_config({.env = {{"ATELIER_CORS_ORIGINS", "https://x.example, https://y.example"}}});
  ASSERT_TRUE(env.is_ok());
  EXPECT_EQ(env->cors_origins.size(), 2u);
}

TEST(ConfigTest, GenerationOptions) {
  auto defaults = load_config({});
  ASSERT_TRUE(defaults.is_ok());
  EXPECT_EQ(defaults->workers, std::vector<std::string>{"cpu"});
  EXPECT_FALSE(defaults->enable_null_model);
  EXPECT_EQ(defaults->sync_mode, "full");
  TempDir dir;
  write_file(dir / "c.toml",
             "workers = [\"cuda:0\", \"cuda:1\"]\nenable_null_model = true\nsync_mode = "
             "\"normal\"\n");
  auto cfg = load_config({.file = dir / "c.toml"});
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->workers, (std::vector<std::string>{"cuda:0", "cuda:1"}));
  EXPECT_TRUE(cfg->enable_null_model);
  EXPECT_EQ(cfg->sync_mode, "normal");
  auto flags = load_config({.flags = {{"enable_null_model", "false"}, {"workers", "auto"}}});
  ASSERT_TRUE(flags.is_ok());
  EXPECT_FALSE(flags->enable_null_model);
  EXPECT_EQ(flags->workers, std::vector<std::string>{"auto"});
  // A TOML boolean must be a boolean, not a string.
  write_file(dir / "d.toml", "enable_null_model = \"yes\"\n");
  auto typed = load_config({.file = dir / "d.toml"});
  ASSERT_FALSE(typed.is_ok());
  EXPECT_EQ(typed.status().field(), "enable_null_model");
}

TEST(ConfigTest, WebSocketWriteMode) {
  auto defaults = load_config({});
  ASSERT_TRUE(defaults.is_ok());
  EXPECT_TRUE(defaults->ws_direct_writes) << "the fast path, which ws_fanout favours";
  auto flag = load_config({.flags = {{"ws_direct_writes", "false"}}});
  ASSERT_TRUE(flag.is_ok()) << flag.status().to_string();
  EXPECT_FALSE(flag->ws_direct_writes);
  auto env = load_config({.env = {{"ATELIER_WS_DIRECT_WRITES", "false"}}});
  ASSERT_TRUE(env.is_ok()) << env.status().to_string();
  EXPECT_FALSE(env->ws_direct_writes);
  auto bad = load_config({.flags = {{"ws_direct_writes", "sometimes"}}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "ws_direct_writes");
}

TEST(ConfigTest, UnknownEnvironmentVariablesWarnOnly) {
  std::vector<std::string> warnings;
  auto cfg = load_config({.env = {{"ATELIER_BIN", "/x"}, {"PATH", "/bin"}}}, &warnings);
  ASSERT_TRUE(cfg.is_ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("ATELIER_BIN"), std::string::npos);
}

TEST(ConfigTest, LorasDirDefaultsToALorasFolderInTheModelsDir) {
  auto plain = load_config({});
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(loras_dir_of(*plain), std::filesystem::path("./models") / "loras");
  auto moved = load_config({.flags = {{"models_dir", "/srv/models"}}});
  ASSERT_TRUE(moved.is_ok());
  EXPECT_EQ(loras_dir_of(*moved), std::filesystem::path("/srv/models/loras"));
  auto own = load_config(
      {.env = {{"ATELIER_LORAS_DIR", "/env/loras"}}, .flags = {{"loras_dir", "/srv/loras"}}});
  ASSERT_TRUE(own.is_ok());
  EXPECT_EQ(loras_dir_of(*own), std::filesystem::path("/srv/loras"));
  auto empty = load_config({.flags = {{"loras_dir", ""}}});
  ASSERT_FALSE(empty.is_ok());
  EXPECT_EQ(empty.status().field(), "loras_dir");
}

TEST(ConfigTest, EveryOptionHasFlagEnvAndHelp) {
  for (const auto& spec : option_specs()) {
    EXPECT_EQ(spec.flag.rfind("--", 0), 0u) << spec.key;
    EXPECT_EQ(spec.env.rfind("ATELIER_", 0), 0u) << spec.key;
    EXPECT_FALSE(spec.help.empty()) << spec.key;
  }
  for (const char* key : {"host", "port", "data_dir", "config", "log_format"}) {
    bool found = false;
    for (const auto& spec : option_specs()) found |= spec.key == key;
    EXPECT_TRUE(found) << key;
  }
  EXPECT_EQ(default_value_text("port"), "8080");
  EXPECT_EQ(default_value_text("host"), "127.0.0.1");
}

}  // namespace
}  // namespace atelier
