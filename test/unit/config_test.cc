#include "verifyd/server/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <vector>

namespace verifyd {
namespace {

ParseOutcome parse(std::vector<const char*> args) {
  args.insert(args.begin(), "verifyd");
  return parseCommandLine(static_cast<int>(args.size()), const_cast<char**>(args.data()));
}

TEST(Config, FlagsWinOverEnvironmentWithOrWithoutServe) {
  ::setenv("VERIFYD_CODE_TTL", "120", 1);
  ::setenv("VERIFYD_AUTH_FAILURES_BEFORE_DELAY", "1000", 1);
  auto plain = parse({"--auth-failures-before-delay", "2"});
  ASSERT_TRUE(plain.config);
  EXPECT_EQ(plain.config->serve.auth_failures_before_delay, 2);
  EXPECT_EQ(plain.config->serve.code_ttl, 120);  // from the environment
  auto serve = parse({"serve", "--auth-failures-before-delay", "3", "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(serve.config);
  EXPECT_EQ(serve.config->command, Command::kServe);
  EXPECT_EQ(serve.config->serve.auth_failures_before_delay, 3);
  EXPECT_EQ(serve.config->serve.listen, "127.0.0.1:0");
  ::unsetenv("VERIFYD_CODE_TTL");
  ::unsetenv("VERIFYD_AUTH_FAILURES_BEFORE_DELAY");
}

TEST(Config, DefaultsAndSubcommands) {
  auto d = parse({});
  ASSERT_TRUE(d.config);
  EXPECT_EQ(d.config->serve.listen, "127.0.0.1:8080");
  EXPECT_EQ(d.config->serve.data_dir, "./data");
  EXPECT_EQ(d.config->serve.code_ttl, 600);
  EXPECT_TRUE(d.config->serve.dev_outbox);
  auto keys = parse({"keys", "create", "--data-dir", "/tmp/x", "--account", "ACabc"});
  ASSERT_TRUE(keys.config);
  EXPECT_EQ(keys.config->command, Command::kKeysCreate);
  EXPECT_EQ(keys.config->account_sid, "ACabc");
  auto off = parse({"--dev-outbox", "off"});
  ASSERT_TRUE(off.config);
  EXPECT_FALSE(off.config->serve.dev_outbox);
  EXPECT_FALSE(parse({"--code-ttl", "0"}).config);
}

TEST(Config, SubcommandFlagsWinOverEnvironment) {
  ::setenv("VERIFYD_DATA_DIR", "/from-env", 1);
  ::setenv("VERIFYD_STORE", "sqlite", 1);
  auto keys = parse({"keys", "create", "--data-dir", "/from-flag", "--account", "ACabc"});
  ASSERT_TRUE(keys.config);
  EXPECT_EQ(keys.config->serve.data_dir, "/from-flag");
  auto migrate = parse({"migrate", "--store", "postgres", "--postgres-url", "postgresql://x/y"});
  ASSERT_TRUE(migrate.config);
  EXPECT_EQ(migrate.config->command, Command::kMigrate);
  EXPECT_EQ(migrate.config->serve.store, "postgres");
  EXPECT_EQ(migrate.config->serve.data_dir, "/from-env");  // not given: the environment's
  auto geo = parse({"geo", "list", "--account", "ACabc", "--data-dir", "/g"});
  ASSERT_TRUE(geo.config);
  EXPECT_EQ(geo.config->serve.data_dir, "/g");
  ::unsetenv("VERIFYD_DATA_DIR");
  ::unsetenv("VERIFYD_STORE");
}

}  // namespace
}  // namespace verifyd
