#include "verifyd/storage/sqlite/sqlite_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "fakes.h"

namespace verifyd {
namespace {

const std::string kAccount = "AC" + std::string(32, 'a');

std::string sidN(const char* prefix, int n) {
  std::string hex = std::to_string(n);
  return prefix + std::string(32 - hex.size(), '0') + hex;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;  // first: outlives the store
  void SetUp() override { reopen(); }
  void TearDown() override { store_.reset(); }
  void reopen() {
    store_.reset();
    store_ = std::move(*SqliteStore::open(dir_.file("db"), true));
  }
  Service service(int n) {
    Service s;
    s.sid = sidN("VA", n);
    s.account_sid = kAccount;
    s.settings.friendly_name = "svc " + std::to_string(n);
    s.settings.passkeys_rp_origins = std::vector<std::string>{"a.example", "b.example"};
    s.date_created = s.date_updated = 1700000000 + n;
    return s;
  }
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, ServicesSurviveReopenWithEverySetting) {
  Service s = service(1);
  s.settings.code_length = 9;
  s.settings.totp_skew = 2;
  s.settings.whatsapp_from = "whatsapp:+15017122661";
  ASSERT_TRUE(store_->createService(s));
  reopen();
  auto got = store_->getService(kAccount, s.sid);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->settings.code_length, 9);
  EXPECT_EQ((*got)->settings.totp_skew, 2);
  EXPECT_EQ((*got)->settings.whatsapp_from, "whatsapp:+15017122661");
  EXPECT_EQ((*got)->settings.passkeys_rp_origins->size(), 2u);
  EXPECT_FALSE(*store_->getService("AC" + std::string(32, 'b'), s.sid));
}

TEST_F(SqliteStoreTest, CachedServicesFollowUpdatesAndDeletes) {
  ASSERT_TRUE(store_->createService(service(1)));
  ASSERT_TRUE(*store_->getService(kAccount, sidN("VA", 1)));  // now cached
  auto updated = store_->updateService(kAccount, sidN("VA", 1), [](Service& s) -> Status {
    s.settings.code_length = 4;
    return {};
  });
  ASSERT_TRUE(updated);
  EXPECT_EQ((*store_->getService(kAccount, sidN("VA", 1)))->settings.code_length, 4);
  EXPECT_FALSE(*store_->getService("AC" + std::string(32, 'b'), sidN("VA", 1)));
  ASSERT_TRUE(store_->deleteService(kAccount, sidN("VA", 1)));
  EXPECT_FALSE(*store_->getService(kAccount, sidN("VA", 1)));
}

TEST_F(SqliteStoreTest, PagesForwardAndBack) {
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(store_->createService(service(i)));
  PageCursor c;
  std::vector<std::string> seen;
  Page<Service> p;
  int pages = 0;
  do {
    p = *store_->listServices(kAccount, c, 3);
    for (auto& s : p.items) seen.push_back(s.sid);
    c = PageCursor{PageCursor::Direction::kAfter, p.last_seq};
    ++pages;
  } while (p.has_next);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen.front(), sidN("VA", 1));
  EXPECT_EQ(seen.back(), sidN("VA", 7));
  EXPECT_TRUE(p.has_previous);
  // Back from the last page (item 7) gives items 4..6.
  auto back =
      *store_->listServices(kAccount, PageCursor{PageCursor::Direction::kBefore, p.first_seq}, 3);
  ASSERT_EQ(back.items.size(), 3u);
  EXPECT_EQ(back.items.front().sid, sidN("VA", 4));
  EXPECT_TRUE(back.has_next);
  EXPECT_TRUE(back.has_previous);
}

TEST_F(SqliteStoreTest, ConcurrentWritesShareCommitsAndAFailureStaysAlone) {
  ASSERT_TRUE(store_->createService(service(1)));
  const std::uint64_t commits_before = store_->commits();
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i)
    threads.emplace_back([&, i] {
      // Every 8th writer reuses an existing SID and must fail without undoing its batch.
      Service s = service(i % 8 == 0 ? 1 : 100 + i);
      if (store_->createService(s))
        ++ok;
      else
        ++failed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 56);
  EXPECT_EQ(failed.load(), 8);
  auto all = *store_->listServices(kAccount, {}, 1000);
  EXPECT_EQ(all.items.size(), 57u);
  // Group commit: 64 writes needed fewer than 64 transactions (each fsync'd).
  EXPECT_LT(store_->commits() - commits_before, 64u);
}

TEST_F(SqliteStoreTest, StartAndMutateAreAtomicUnderContention) {
  ASSERT_TRUE(store_->createService(service(1)));
  Verification v;
  v.sid = sidN("VE", 1);
  v.service_sid = sidN("VA", 1);
  v.account_sid = kAccount;
  v.to = "+15017122661";
  v.channel = "sms";
  v.code_hash = std::string(32, '\1');
  v.expires_at = 2000000000;
  ASSERT_TRUE(store_->start(v.service_sid, v.to, 1700000000,
                            [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
                              EXPECT_FALSE(pending);
                              return StartWrite{v, true, std::nullopt};
                            }));
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i)
    threads.emplace_back([&] {
      (void)store_->mutate(VerificationKey{v.service_sid, {}, v.to},
                           [](const Verification& cur) -> Result<Verification> {
                             Verification next = cur;
                             next.check_attempts++;
                             return next;
                           });
    });
  for (auto& t : threads) t.join();
  auto got = *store_->getVerification(VerificationKey{v.service_sid, v.sid, {}});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->check_attempts, 32);
}

}  // namespace
}  // namespace verifyd
