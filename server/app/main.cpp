// The `atelier` command: `atelier serve` runs the server. Later subcommands (generate, worker,
// admin) join here as their modules arrive.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>

#include "common/config.h"
#include "common/logging.h"
#include "server/app/app.h"

#ifndef ATELIER_VERSION
#define ATELIER_VERSION "0.0.0"
#endif

namespace {

using atelier::OptionSpec;

int run_serve(const std::map<std::string, CLI::Option*>& options,
              const std::map<std::string, std::string>& values) {
  atelier::ConfigSources sources;
  sources.env = atelier::environment_snapshot();
  for (const auto& [key, opt] : options) {
    if (opt->count() > 0) sources.flags[key] = values.at(key);
  }
  std::vector<std::string> warnings;
  auto config = atelier::load_config(sources, &warnings);
  if (!config) {
    std::fprintf(stderr, "atelier: configuration error: %s\n", config.status().message().c_str());
    return 2;
  }
  atelier::log::init(config->log_format, config->log_level);
  for (const auto& w : warnings) atelier::log::warn("{}", w);
  if (!config->config_file.empty()) {
    atelier::log::info("read configuration from {}", config->config_file.string());
  }

  atelier::app::App app(std::move(*config));
  if (auto st = app.start(); !st) {
    atelier::log::error("cannot start: {}", st.message());
    app.shutdown();
    return 1;
  }
  return app.run_until_stopped();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Atelier: a server where teams create AI art together"};
  cli.set_version_flag("--version", ATELIER_VERSION);
  cli.require_subcommand(1);

  auto* serve = cli.add_subcommand(
      "serve",
      "Run the HTTP server. Options are read from, in increasing precedence: defaults, the "
      "TOML file given by --config, ATELIER_* environment variables, and these flags.");
  std::map<std::string, std::string> values;
  std::map<std::string, CLI::Option*> options;
  for (const OptionSpec& spec : atelier::option_specs()) {
    std::string help = spec.help + " [env " + spec.env;
    std::string def = atelier::default_value_text(spec.key);
    if (!def.empty()) help += ", default " + def;
    help += "]";
    options[spec.key] = serve->add_option(spec.flag, values[spec.key], help);
  }

  int exit_code = 0;
  serve->callback([&] { exit_code = run_serve(options, values); });
  CLI11_PARSE(cli, argc, argv);
  return exit_code;
}
