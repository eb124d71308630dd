// `atelier admin ...`: headless set-up and recovery, run against the data dir directly (the
// server may be running; SQLite serializes the two writers).
#pragma once

#include <string>

#include "common/config.h"

namespace atelier::app {

// Creates an account. `make_admin` (or being the first account) makes it an instance admin.
// Returns the process exit code; prints what happened or why not.
int admin_create_user(const ServerConfig& config, const std::string& username,
                      const std::string& password, bool make_admin);
// Sets a new password and revokes every session and token of the account.
int admin_reset_password(const ServerConfig& config, const std::string& username,
                         const std::string& password);

}  // namespace atelier::app
