#include "verifyd/server/app.h"
#include "verifyd/server/config.h"

int main(int argc, char** argv) {
  auto parsed = verifyd::parseCommandLine(argc, argv);
  if (!parsed.config) return parsed.exit_code;
  return verifyd::runCommand(*parsed.config);
}
