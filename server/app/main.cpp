// The `atelier` command: `atelier serve` runs the server. Later subcommands (generate, worker,
// admin) join here as their modules arrive.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "common/config.h"
#include "common/logging.h"
#include "server/app/admin_command.h"
#include "server/app/app.h"
#include "server/inference/sd/generate_command.h"

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

struct AdminArgs {
  std::string username;
  std::string password;
  bool password_stdin = false;
  bool make_admin = false;
  std::string data_dir;
  std::string config;
};

// The data dir and config file of an admin command, through the same layers as `serve`.
std::optional<atelier::ServerConfig> admin_config(const AdminArgs& a) {
  atelier::ConfigSources sources;
  sources.env = atelier::environment_snapshot();
  if (!a.data_dir.empty()) sources.flags["data_dir"] = a.data_dir;
  if (!a.config.empty()) sources.flags["config"] = a.config;
  auto config = atelier::load_config(sources);
  if (!config) {
    std::fprintf(stderr, "atelier: configuration error: %s\n", config.status().message().c_str());
    return std::nullopt;
  }
  return std::move(*config);
}

// The password from --password-stdin (one line) or --password; never echoed anywhere.
std::optional<std::string> admin_password(const AdminArgs& a) {
  if (a.password_stdin) {
    std::string line;
    if (!std::getline(std::cin, line)) {
      std::fprintf(stderr, "atelier admin: no password on standard input\n");
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  if (a.password.empty()) {
    std::fprintf(stderr, "atelier admin: give --password-stdin (preferred) or --password\n");
    return std::nullopt;
  }
  return a.password;
}

void add_admin_options(CLI::App* cmd, AdminArgs& a) {
  cmd->add_option("--username", a.username, "account name (3-32 of a-z 0-9 _ . -)")->required();
  cmd->add_option("--password", a.password,
                  "new password (visible to other local users in the process list; prefer "
                  "--password-stdin)");
  cmd->add_flag("--password-stdin", a.password_stdin, "read the password from standard input");
  cmd->add_option("--data-dir", a.data_dir, "data directory of the server [default ./data]");
  cmd->add_option("--config", a.config, "TOML configuration file (for data_dir)");
}

}  // namespace

int main(int argc, char** argv) {
  // torch's OpenMP threads share the cores with the I/O threads; spinning while idle (OpenMP's
  // default) starves them and slows renders several-fold on a busy machine. An operator's own
  // setting wins. Must happen before the first parallel region reads it.
  ::setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0);
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

  auto* admin = cli.add_subcommand("admin", "Headless administration of the data directory");
  admin->require_subcommand(1);
  AdminArgs admin_args;
  auto* create_user = admin->add_subcommand("create-user", "Create an account");
  add_admin_options(create_user, admin_args);
  create_user->add_flag("--admin", admin_args.make_admin, "make it an instance admin");
  create_user->callback([&] {
    auto config = admin_config(admin_args);
    auto password = config ? admin_password(admin_args) : std::nullopt;
    exit_code = password ? atelier::app::admin_create_user(*config, admin_args.username, *password,
                                                           admin_args.make_admin)
                         : 2;
  });
  auto* reset = admin->add_subcommand(
      "reset-password", "Set a new password and revoke every session and token of the account");
  add_admin_options(reset, admin_args);
  reset->callback([&] {
    auto config = admin_config(admin_args);
    auto password = config ? admin_password(admin_args) : std::nullopt;
    exit_code =
        password ? atelier::app::admin_reset_password(*config, admin_args.username, *password) : 2;
  });
  atelier::sd::GenerateArgs gen;
  auto* generate = cli.add_subcommand(
      "generate",
      "Run one Stable Diffusion generation offline from a diffusers model folder or a "
      "single-file checkpoint");
  generate
      ->add_option("--model", gen.model,
                   "model folder (with model_index.json) or single-file checkpoint (.safetensors)")
      ->required();
  generate->add_option("--config", gen.config_dir,
                       "single files: a folder of diffusers configs to use instead of the "
                       "family's published ones");
  generate->add_option("--prompt", gen.prompt, "what to make")->required();
  generate->add_option("--negative", gen.negative, "what to steer away from");
  generate->add_option("--width", gen.width, "pixels (default: the model's native size)");
  generate->add_option("--height", gen.height, "pixels (default: the model's native size)");
  generate->add_option("--steps", gen.steps, "sampler steps (default: the model's)");
  generate->add_option("--guidance", gen.guidance, "classifier-free guidance (<= 1: none)");
  generate->add_option("--sampler", gen.sampler, "euler, euler_a, ddim or lcm");
  generate->add_option("--seed", gen.seed, "seed (default: random)");
  generate->add_option("--init-image", gen.init_image, "PNG to start from (img2img)");
  generate->add_option("--strength", gen.strength, "how far img2img departs from --init-image");
  generate->add_option("--mask", gen.mask,
                       "PNG: inpaint --init-image where it is white (or transparent)");
  generate->add_option("--mask-blur", gen.mask_blur,
                       "inpaint: composite over --init-image through the mask blurred by N px "
                       "(default 0: diffusers' output as it is)");
  generate->add_option("--init-latents", gen.init_latents,
                       "safetensors whose `latents` (txt2img), `noise`, "
                       "`image_encoder_sample_noise` and `masked_image_encoder_sample_noise` "
                       "replace the random draws");
  generate->add_option("--original-size", gen.original_size,
                       "SDXL: the size the model is told the source image had, WxH");
  generate->add_option("--target-size", gen.target_size,
                       "SDXL: the size it is told to aim at, WxH");
  generate->add_option("--crop-top-left", gen.crop_top_left,
                       "SDXL: the crop it is told the image has, TOP,LEFT");
  generate->add_option("--lora", gen.loras,
                       "a LoRA file to apply, FILE[:WEIGHT] (repeatable; weight 1 by default)");
  generate->add_option("--out", gen.out, "PNG to write (default out.png)");
  generate->add_option("--out-tensor", gen.out_tensor,
                       "safetensors to write the image to before 8-bit conversion (`image`)");
  generate->callback([&] { exit_code = atelier::sd::run_generate(gen); });
  CLI11_PARSE(cli, argc, argv);
  return exit_code;
}
