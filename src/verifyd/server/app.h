#pragma once
#include "verifyd/server/config.h"

namespace verifyd {

// The composition root: config -> store, keyring, core, router, HTTP server. Returns the
// process exit code; start-up errors print one line.
int runCommand(const Config& config);

}  // namespace verifyd
