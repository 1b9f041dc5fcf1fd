// The FactorStore half of SqliteStore: entities, factors, challenges, access tokens, webhooks
// and the webhook deliveries (the outbox of events). Every write goes through the single
// writer, so each read-modify-write is serialized and its events are committed with it.
#include <chrono>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "verifyd/storage/sqlite/sqlite_helpers.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {

using sqlite::Db;
using sqlite::pageQuery;
using sqlite::Query;
using sqlite::selectOne;
using json = nlohmann::json;

namespace {

// The one row `sql` selects with `params` bound from ?1, or nullopt. `sql` must outlive the
// connection (the statement cache keys it by address).
template <class T, class ReadRow>
Result<std::optional<T>> selectBy(Db& db, const std::string& sql,
                                  std::initializer_list<std::string_view> params, ReadRow readRow) {
  Query q = db.query(sql.c_str());
  int i = 0;
  for (auto p : params) q.bind(++i, p);
  auto row = q.step();
  if (!row) return fail(row.error());
  if (!*row) return std::optional<T>();
  return std::optional<T>(readRow(q));
}

UnixTime wallClock() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- entities

constexpr const char* kEntityCols =
    "seq, sid, account_sid, service_sid, identity, date_created, date_updated";
const std::string kSelectEntity = std::string("SELECT ") + kEntityCols +
                                  " FROM entities WHERE service_sid = ?1 AND identity = ?2";

Entity readEntity(const Query& q) {
  return Entity{q.text(1), q.text(2), q.text(3), q.text(4), q.integer(5), q.integer(6)};
}

Status insertEntity(Db& db, const Entity& e) {
  Query q = db.query(
      "INSERT INTO entities(sid, account_sid, service_sid, identity, date_created, "
      "date_updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  q.bind(1, e.sid).bind(2, e.account_sid).bind(3, e.service_sid).bind(4, e.identity);
  q.bind(5, static_cast<std::int64_t>(e.date_created));
  return q.bind(6, static_cast<std::int64_t>(e.date_updated)).run();
}

// ---- factors

// After `seq`, parameter k of the insert and update binds column k.
constexpr const char* kFactorCols =
    "seq, sid, account_sid, service_sid, entity_sid, identity, friendly_name, status, "
    "factor_type, totp_alg, totp_skew, totp_code_length, totp_time_step, push_sdk_version, "
    "push_app_id, push_notification_platform, push_notification_token, metadata, "
    "secret_sealed, public_key, binding_alg, failed_attempts, last_step, date_created, "
    "date_updated";
const std::string kSelectFactor =
    std::string("SELECT ") + kFactorCols +
    " FROM factors WHERE sid = ?1 AND service_sid = ?2 AND identity = ?3";

Factor readFactor(const Query& q) {
  Factor f;
  f.sid = q.text(1);
  f.account_sid = q.text(2);
  f.service_sid = q.text(3);
  f.entity_sid = q.text(4);
  f.identity = q.text(5);
  f.friendly_name = q.text(6);
  f.status = q.text(7);
  f.factor_type = q.text(8);
  f.totp.alg = q.text(9);
  f.totp.skew = static_cast<int>(q.integer(10));
  f.totp.code_length = static_cast<int>(q.integer(11));
  f.totp.time_step = static_cast<int>(q.integer(12));
  f.push.sdk_version = q.text(13);
  f.push.app_id = q.text(14);
  f.push.notification_platform = q.text(15);
  f.push.notification_token = q.text(16);
  f.metadata = q.optText(17);
  f.secret_sealed = q.blobAt(18);
  f.public_key = q.text(19);
  f.binding_alg = q.text(20);
  f.failed_attempts = static_cast<int>(q.integer(21));
  f.last_step = q.integer(22);
  f.date_created = q.integer(23);
  f.date_updated = q.integer(24);
  return f;
}

void bindFactor(Query& q, const Factor& f) {
  q.bind(1, f.sid).bind(2, f.account_sid).bind(3, f.service_sid).bind(4, f.entity_sid);
  q.bind(5, f.identity).bind(6, f.friendly_name).bind(7, f.status).bind(8, f.factor_type);
  q.bind(9, f.totp.alg).bind(10, f.totp.skew).bind(11, f.totp.code_length);
  q.bind(12, f.totp.time_step).bind(13, f.push.sdk_version).bind(14, f.push.app_id);
  q.bind(15, f.push.notification_platform).bind(16, f.push.notification_token);
  q.bind(17, f.metadata).blob(18, f.secret_sealed).bind(19, f.public_key);
  q.bind(20, f.binding_alg).bind(21, f.failed_attempts).bind(22, f.last_step);
  q.bind(23, static_cast<std::int64_t>(f.date_created));
  q.bind(24, static_cast<std::int64_t>(f.date_updated));
}

Status insertFactor(Db& db, const Factor& f) {
  Query q = db.query(
      "INSERT INTO factors(sid, account_sid, service_sid, entity_sid, identity, friendly_name, "
      "status, factor_type, totp_alg, totp_skew, totp_code_length, totp_time_step, "
      "push_sdk_version, push_app_id, push_notification_platform, push_notification_token, "
      "metadata, secret_sealed, public_key, binding_alg, failed_attempts, last_step, "
      "date_created, date_updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
      "?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)");
  bindFactor(q, f);
  return q.run();
}

// Every field but the ids (sid, account, service, entity, identity).
Status updateFactor(Db& db, const Factor& f) {
  Query q = db.query(
      "UPDATE factors SET friendly_name = ?6, status = ?7, factor_type = ?8, totp_alg = ?9, "
      "totp_skew = ?10, totp_code_length = ?11, totp_time_step = ?12, push_sdk_version = ?13, "
      "push_app_id = ?14, push_notification_platform = ?15, push_notification_token = ?16, "
      "metadata = ?17, secret_sealed = ?18, public_key = ?19, binding_alg = ?20, "
      "failed_attempts = ?21, last_step = ?22, date_created = ?23, date_updated = ?24 "
      "WHERE sid = ?1 AND service_sid = ?3 AND identity = ?5");
  bindFactor(q, f);
  return q.run();
}

void keepIds(Factor& f, const Factor& stored) {
  f.sid = stored.sid;
  f.account_sid = stored.account_sid;
  f.service_sid = stored.service_sid;
  f.entity_sid = stored.entity_sid;
  f.identity = stored.identity;
}

// ---- challenges

constexpr const char* kChallengeCols =
    "seq, sid, account_sid, service_sid, entity_sid, identity, factor_sid, factor_type, status, "
    "responded_reason, details_message, details_fields, hidden_details, metadata, "
    "expiration_date, date_responded, failed_attempts, date_created, date_updated";
const std::string kSelectChallenge =
    std::string("SELECT ") + kChallengeCols +
    " FROM challenges WHERE sid = ?1 AND service_sid = ?2 AND identity = ?3";

std::string encodeFields(const std::vector<ChallengeField>& fields) {
  json a = json::array();
  for (const auto& f : fields) a.push_back(json{{"label", f.label}, {"value", f.value}});
  return a.dump();
}

std::vector<ChallengeField> decodeFields(const std::string& text) {
  std::vector<ChallengeField> out;
  for (const auto& f : json::parse(text))
    out.push_back(
        ChallengeField{f.at("label").get<std::string>(), f.at("value").get<std::string>()});
  return out;
}

Challenge readChallenge(const Query& q) {
  Challenge c;
  c.sid = q.text(1);
  c.account_sid = q.text(2);
  c.service_sid = q.text(3);
  c.entity_sid = q.text(4);
  c.identity = q.text(5);
  c.factor_sid = q.text(6);
  c.factor_type = q.text(7);
  c.status = q.text(8);
  c.responded_reason = q.text(9);
  c.details_message = q.text(10);
  c.details_fields = decodeFields(q.text(11));
  c.hidden_details = q.optText(12);
  c.metadata = q.optText(13);
  c.expiration_date = q.integer(14);
  c.date_responded = q.integer(15);
  c.failed_attempts = static_cast<int>(q.integer(16));
  c.date_created = q.integer(17);
  c.date_updated = q.integer(18);
  return c;
}

void bindChallenge(Query& q, const Challenge& c) {
  q.bind(1, c.sid).bind(2, c.account_sid).bind(3, c.service_sid).bind(4, c.entity_sid);
  q.bind(5, c.identity).bind(6, c.factor_sid).bind(7, c.factor_type).bind(8, c.status);
  q.bind(9, c.responded_reason).bind(10, c.details_message);
  q.bind(11, encodeFields(c.details_fields)).bind(12, c.hidden_details).bind(13, c.metadata);
  q.bind(14, static_cast<std::int64_t>(c.expiration_date));
  q.bind(15, static_cast<std::int64_t>(c.date_responded)).bind(16, c.failed_attempts);
  q.bind(17, static_cast<std::int64_t>(c.date_created));
  q.bind(18, static_cast<std::int64_t>(c.date_updated));
}

Status insertChallenge(Db& db, const Challenge& c) {
  Query q = db.query(
      "INSERT INTO challenges(sid, account_sid, service_sid, entity_sid, identity, factor_sid, "
      "factor_type, status, responded_reason, details_message, details_fields, hidden_details, "
      "metadata, expiration_date, date_responded, failed_attempts, date_created, date_updated) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)");
  bindChallenge(q, c);
  return q.run();
}

// Every field but the ids (sid, account, service, entity, identity, factor).
Status updateChallenge(Db& db, const Challenge& c) {
  Query q = db.query(
      "UPDATE challenges SET factor_type = ?7, status = ?8, responded_reason = ?9, "
      "details_message = ?10, details_fields = ?11, hidden_details = ?12, metadata = ?13, "
      "expiration_date = ?14, date_responded = ?15, failed_attempts = ?16, date_created = ?17, "
      "date_updated = ?18 WHERE sid = ?1 AND service_sid = ?3 AND identity = ?5");
  bindChallenge(q, c);
  return q.run();
}

// ---- access tokens

constexpr const char* kAccessTokenCols =
    "seq, sid, account_sid, service_sid, entity_identity, factor_type, factor_friendly_name, "
    "token, ttl, date_created";
const std::string kSelectAccessToken = std::string("SELECT ") + kAccessTokenCols +
                                       " FROM access_tokens WHERE service_sid = ?1 AND sid = ?2";

AccessToken readAccessToken(const Query& q) {
  AccessToken t;
  t.sid = q.text(1);
  t.account_sid = q.text(2);
  t.service_sid = q.text(3);
  t.entity_identity = q.text(4);
  t.factor_type = q.text(5);
  t.factor_friendly_name = q.optText(6);
  t.token = q.text(7);
  t.ttl = static_cast<int>(q.integer(8));
  t.date_created = q.integer(9);
  return t;
}

// ---- webhooks

constexpr const char* kWebhookCols =
    "seq, sid, account_sid, service_sid, friendly_name, event_types, status, version, "
    "webhook_url, webhook_method, date_created, date_updated";
const std::string kSelectWebhook =
    std::string("SELECT ") + kWebhookCols + " FROM webhooks WHERE service_sid = ?1 AND sid = ?2";

Webhook readWebhook(const Query& q) {
  Webhook w;
  w.sid = q.text(1);
  w.account_sid = q.text(2);
  w.service_sid = q.text(3);
  w.friendly_name = q.text(4);
  w.event_types = json::parse(q.text(5)).get<std::vector<std::string>>();
  w.status = q.text(6);
  w.version = q.text(7);
  w.webhook_url = q.text(8);
  w.webhook_method = q.text(9);
  w.date_created = q.integer(10);
  w.date_updated = q.integer(11);
  return w;
}

// ---- webhook deliveries

constexpr const char* kDeliveryCols =
    "seq, sid, kind, account_sid, service_sid, webhook_sid, url, body, status, tries, error, "
    "next_try_ms, lease_token, date_created, date_updated";

WebhookDelivery readDelivery(const Query& q) {
  WebhookDelivery d;
  d.sid = q.text(1);
  d.kind = q.text(2);
  d.account_sid = q.text(3);
  d.service_sid = q.text(4);
  d.webhook_sid = q.text(5);
  d.url = q.text(6);
  d.body = q.text(7);
  d.status = q.text(8);
  d.tries = static_cast<int>(q.integer(9));
  d.error = q.text(10);
  d.next_try_ms = q.integer(11);
  d.lease_token = q.text(12);
  d.date_created = q.integer(13);
  d.date_updated = q.integer(14);
  return d;
}

// Inserts `d` as given; an empty sid gets a fresh "WD" + 32 hex digits.
Status insertDelivery(Db& db, const WebhookDelivery& d) {
  Query q = db.query(
      "INSERT INTO webhook_deliveries(sid, kind, account_sid, service_sid, webhook_sid, url, "
      "body, status, tries, error, next_try_ms, lease_token, date_created, date_updated) "
      "VALUES(COALESCE(NULLIF(?1, ''), 'WD' || lower(hex(randomblob(16)))), ?2, ?3, ?4, ?5, ?6, "
      "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
  q.bind(1, d.sid).bind(2, d.kind).bind(3, d.account_sid).bind(4, d.service_sid);
  q.bind(5, d.webhook_sid).bind(6, d.url).bind(7, d.body).bind(8, d.status).bind(9, d.tries);
  q.bind(10, d.error).bind(11, d.next_try_ms).bind(12, d.lease_token);
  q.bind(13, static_cast<std::int64_t>(d.date_created));
  return q.bind(14, static_cast<std::int64_t>(d.date_updated)).run();
}

// Queues one delivery of each event to every enabled webhook of the service subscribed to its
// type or to "*". Runs inside the write of the change that raised the events.
Status fanOut(Db& db, std::string_view service_sid, const std::vector<WebhookEvent>& events,
              UnixTime now) {
  for (const auto& e : events) {
    Query q = db.query(
        "INSERT INTO webhook_deliveries(sid, kind, account_sid, service_sid, webhook_sid, url, "
        "body, status, tries, error, next_try_ms, lease_token, date_created, date_updated) "
        "SELECT 'WD' || lower(hex(randomblob(16))), 'webhook', w.account_sid, w.service_sid, "
        "w.sid, w.webhook_url, ?2, 'queued', 0, '', 0, '', ?4, ?4 FROM webhooks w "
        "WHERE w.service_sid = ?1 AND w.status = 'enabled' AND EXISTS(SELECT 1 FROM "
        "json_each(w.event_types) t WHERE t.value IN (?3, '*')) ORDER BY w.seq");
    q.bind(1, service_sid).bind(2, e.payload).bind(3, e.type);
    if (auto st = q.bind(4, static_cast<std::int64_t>(now)).run(); !st) return st;
  }
  return {};
}

}  // namespace

// ---- entities -------------------------------------------------------------------------------

Status SqliteStore::createEntity(const Entity& e) {
  return write([&](Db& db) -> Status {
    auto found = selectOne<Entity>(db, kSelectEntity, e.service_sid, e.identity, readEntity);
    if (!found) return fail(found.error());
    if (*found)
      return fail(Error::of(ErrorKind::kDuplicateEntity,
                            "An Entity with identity " + e.identity + " already exists"));
    return insertEntity(db, e);
  });
}

Result<Entity> SqliteStore::getOrCreateEntity(const Entity& e) {
  Entity out;
  Status st = write([&](Db& db) -> Status {
    auto found = selectOne<Entity>(db, kSelectEntity, e.service_sid, e.identity, readEntity);
    if (!found) return fail(found.error());
    if (*found) {
      out = std::move(**found);
      return {};
    }
    out = e;
    return insertEntity(db, e);
  });
  if (!st) return fail(st.error());
  return out;
}

Result<std::optional<Entity>> SqliteStore::getEntity(std::string_view service_sid,
                                                     std::string_view identity) {
  return read<std::optional<Entity>>([&](Db& db) {
    return selectOne<Entity>(db, kSelectEntity, service_sid, identity, readEntity);
  });
}

Result<Page<Entity>> SqliteStore::listEntities(std::string_view service_sid, PageCursor cursor,
                                               int page_size) {
  return read<Page<Entity>>([&](Db& db) {
    return pageQuery<Entity>(
        db, kEntityCols, "entities", "service_sid = ?1", 1, true, cursor, page_size,
        [&](Query& q) { q.bind(1, service_sid); }, readEntity);
  });
}

Status SqliteStore::deleteEntity(std::string_view service_sid, std::string_view identity,
                                 const std::vector<WebhookEvent>& events) {
  UnixTime now = wallClock();
  return write([&](Db& db) -> Status {
    Query del = db.query("DELETE FROM entities WHERE service_sid = ?1 AND identity = ?2");
    if (auto st = del.bind(1, service_sid).bind(2, identity).run(); !st) return st;
    if (db.changes() == 0) return fail(Error::notFound());
    for (const char* sql : {"DELETE FROM challenges WHERE service_sid = ?1 AND identity = ?2",
                            "DELETE FROM factors WHERE service_sid = ?1 AND identity = ?2"})
      if (auto st = db.query(sql).bind(1, service_sid).bind(2, identity).run(); !st) return st;
    return fanOut(db, service_sid, events, now);
  });
}

// ---- factors --------------------------------------------------------------------------------

Status SqliteStore::createFactor(const Factor& f, const std::vector<WebhookEvent>& events) {
  return write([&](Db& db) -> Status {
    if (auto st = insertFactor(db, f); !st) return st;
    return fanOut(db, f.service_sid, events, f.date_created);
  });
}

Result<std::optional<Factor>> SqliteStore::getFactor(std::string_view service_sid,
                                                     std::string_view identity,
                                                     std::string_view sid) {
  return read<std::optional<Factor>>([&](Db& db) {
    return selectBy<Factor>(db, kSelectFactor, {sid, service_sid, identity}, readFactor);
  });
}

Result<Page<Factor>> SqliteStore::listFactors(std::string_view service_sid,
                                              std::string_view identity, PageCursor cursor,
                                              int page_size) {
  return read<Page<Factor>>([&](Db& db) {
    return pageQuery<Factor>(
        db, kFactorCols, "factors", "service_sid = ?1 AND identity = ?2", 2, true, cursor,
        page_size, [&](Query& q) { q.bind(1, service_sid).bind(2, identity); }, readFactor);
  });
}

Result<Factor> SqliteStore::mutateFactor(
    std::string_view service_sid, std::string_view identity, std::string_view sid,
    const std::function<Result<FactorChange>(const Factor&)>& change) {
  Factor out;
  Status st = write([&](Db& db) -> Status {
    auto found = selectBy<Factor>(db, kSelectFactor, {sid, service_sid, identity}, readFactor);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    auto changed = change(**found);
    if (!changed) return fail(changed.error());
    Factor f = std::move(changed->factor);
    keepIds(f, **found);
    if (auto s = updateFactor(db, f); !s) return s;
    if (auto s = fanOut(db, f.service_sid, changed->events, f.date_updated); !s) return s;
    out = std::move(f);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Status SqliteStore::deleteFactor(std::string_view service_sid, std::string_view identity,
                                 std::string_view sid, const std::vector<WebhookEvent>& events) {
  UnixTime now = wallClock();
  return write([&](Db& db) -> Status {
    Query del =
        db.query("DELETE FROM factors WHERE sid = ?1 AND service_sid = ?2 AND identity = ?3");
    if (auto st = del.bind(1, sid).bind(2, service_sid).bind(3, identity).run(); !st) return st;
    if (db.changes() == 0) return fail(Error::notFound());
    if (auto st = db.query("DELETE FROM challenges WHERE factor_sid = ?1").bind(1, sid).run(); !st)
      return st;
    return fanOut(db, service_sid, events, now);
  });
}

Result<int> SqliteStore::purgeUnverifiedFactors(UnixTime before) {
  int purged = 0;
  Status st = write([&](Db& db) -> Status {
    auto b = static_cast<std::int64_t>(before);
    if (auto s =
            db.query("DELETE FROM challenges WHERE factor_sid IN (SELECT sid FROM factors WHERE "
                     "status = 'unverified' AND date_created < ?1)")
                .bind(1, b)
                .run();
        !s)
      return s;
    if (auto s = db.query("DELETE FROM factors WHERE status = 'unverified' AND date_created < ?1")
                     .bind(1, b)
                     .run();
        !s)
      return s;
    purged = static_cast<int>(db.changes());
    return {};
  });
  if (!st) return fail(st.error());
  return purged;
}

Result<int> SqliteStore::resealFactorSecrets(
    const std::function<Result<std::string>(const std::string&)>& reseal) {
  int resealed = 0;
  Status st = write([&](Db& db) -> Status {
    resealed = 0;
    std::vector<std::pair<std::string, std::string>> secrets;  // sid, sealed
    {
      Query q = db.query(
          "SELECT sid, secret_sealed FROM factors WHERE length(secret_sealed) > 0 ORDER BY seq");
      for (;;) {
        auto row = q.step();
        if (!row) return fail(row.error());
        if (!*row) break;
        secrets.emplace_back(q.text(0), q.blobAt(1));
      }
    }
    for (const auto& [sid, sealed] : secrets) {
      auto fresh = reseal(sealed);
      if (!fresh) return fail(fresh.error());
      Query u = db.query("UPDATE factors SET secret_sealed = ?1 WHERE sid = ?2");
      if (auto s = u.blob(1, *fresh).bind(2, sid).run(); !s) return s;
      ++resealed;
    }
    return {};
  });
  if (!st) return fail(st.error());
  return resealed;
}

// ---- challenges -----------------------------------------------------------------------------

Status SqliteStore::createChallenge(const Challenge& c, const std::vector<WebhookEvent>& events,
                                    const std::optional<WebhookDelivery>& push) {
  return write([&](Db& db) -> Status {
    if (auto st = insertChallenge(db, c); !st) return st;
    if (auto st = fanOut(db, c.service_sid, events, c.date_created); !st) return st;
    if (!push) return {};
    WebhookDelivery d = *push;
    d.kind = "push";
    return insertDelivery(db, d);
  });
}

Result<std::optional<Challenge>> SqliteStore::getChallenge(std::string_view service_sid,
                                                           std::string_view identity,
                                                           std::string_view sid) {
  return read<std::optional<Challenge>>([&](Db& db) {
    return selectBy<Challenge>(db, kSelectChallenge, {sid, service_sid, identity}, readChallenge);
  });
}

Result<Page<Challenge>> SqliteStore::listChallenges(std::string_view service_sid,
                                                    std::string_view identity,
                                                    const ChallengeFilter& filter,
                                                    PageCursor cursor, int page_size) {
  return read<Page<Challenge>>([&](Db& db) {
    std::string where = "service_sid = ?1 AND identity = ?2";
    std::vector<std::string> params;
    if (!filter.factor_sid.empty()) {
      params.push_back(filter.factor_sid);
      where += " AND factor_sid = ?" + std::to_string(params.size() + 2);
    }
    if (!filter.status.empty()) {
      params.push_back(filter.status);
      where += " AND status = ?" + std::to_string(params.size() + 2);
    }
    return pageQuery<Challenge>(
        db, kChallengeCols, "challenges", where, static_cast<int>(params.size()) + 2,
        !filter.descending, cursor, page_size,
        [&](Query& q) {
          q.bind(1, service_sid).bind(2, identity);
          for (std::size_t i = 0; i < params.size(); ++i)
            q.bind(static_cast<int>(i) + 3, params[i]);
        },
        readChallenge);
  });
}

Result<Challenge> SqliteStore::mutateChallenge(
    std::string_view service_sid, std::string_view identity, std::string_view sid,
    const std::function<Result<ChallengeChange>(const Challenge&, const Factor&)>& change) {
  Challenge out;
  Status st = write([&](Db& db) -> Status {
    auto challenge =
        selectBy<Challenge>(db, kSelectChallenge, {sid, service_sid, identity}, readChallenge);
    if (!challenge) return fail(challenge.error());
    if (!*challenge) return fail(Error::notFound());
    auto factor = selectBy<Factor>(db, kSelectFactor,
                                   {(*challenge)->factor_sid, service_sid, identity}, readFactor);
    if (!factor) return fail(factor.error());
    if (!*factor) return fail(Error::notFound());
    auto changed = change(**challenge, **factor);
    if (!changed) return fail(changed.error());
    Challenge c = std::move(changed->challenge);
    c.sid = (*challenge)->sid;
    c.account_sid = (*challenge)->account_sid;
    c.service_sid = (*challenge)->service_sid;
    c.entity_sid = (*challenge)->entity_sid;
    c.identity = (*challenge)->identity;
    c.factor_sid = (*challenge)->factor_sid;
    Factor f = std::move(changed->factor);
    keepIds(f, **factor);
    if (auto s = updateChallenge(db, c); !s) return s;
    if (auto s = updateFactor(db, f); !s) return s;
    if (auto s = fanOut(db, c.service_sid, changed->events, c.date_updated); !s) return s;
    out = std::move(c);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

// ---- access tokens --------------------------------------------------------------------------

Status SqliteStore::createAccessToken(const AccessToken& t) {
  return write([&](Db& db) -> Status {
    Query q = db.query(
        "INSERT INTO access_tokens(sid, account_sid, service_sid, entity_identity, factor_type, "
        "factor_friendly_name, token, ttl, date_created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
        "?9)");
    q.bind(1, t.sid).bind(2, t.account_sid).bind(3, t.service_sid).bind(4, t.entity_identity);
    q.bind(5, t.factor_type).bind(6, t.factor_friendly_name).bind(7, t.token).bind(8, t.ttl);
    return q.bind(9, static_cast<std::int64_t>(t.date_created)).run();
  });
}

Result<std::optional<AccessToken>> SqliteStore::getAccessToken(std::string_view service_sid,
                                                               std::string_view sid) {
  return read<std::optional<AccessToken>>([&](Db& db) {
    return selectOne<AccessToken>(db, kSelectAccessToken, service_sid, sid, readAccessToken);
  });
}

// ---- webhooks -------------------------------------------------------------------------------

Status SqliteStore::createWebhook(const Webhook& w) {
  return write([&](Db& db) -> Status {
    Query q = db.query(
        "INSERT INTO webhooks(sid, account_sid, service_sid, friendly_name, event_types, status, "
        "version, webhook_url, webhook_method, date_created, date_updated) VALUES(?1, ?2, ?3, "
        "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    q.bind(1, w.sid).bind(2, w.account_sid).bind(3, w.service_sid).bind(4, w.friendly_name);
    q.bind(5, json(w.event_types).dump()).bind(6, w.status).bind(7, w.version);
    q.bind(8, w.webhook_url).bind(9, w.webhook_method);
    q.bind(10, static_cast<std::int64_t>(w.date_created));
    return q.bind(11, static_cast<std::int64_t>(w.date_updated)).run();
  });
}

Result<std::optional<Webhook>> SqliteStore::getWebhook(std::string_view service_sid,
                                                       std::string_view sid) {
  return read<std::optional<Webhook>>([&](Db& db) {
    return selectOne<Webhook>(db, kSelectWebhook, service_sid, sid, readWebhook);
  });
}

Result<Page<Webhook>> SqliteStore::listWebhooks(std::string_view service_sid, PageCursor cursor,
                                                int page_size) {
  return read<Page<Webhook>>([&](Db& db) {
    return pageQuery<Webhook>(
        db, kWebhookCols, "webhooks", "service_sid = ?1", 1, true, cursor, page_size,
        [&](Query& q) { q.bind(1, service_sid); }, readWebhook);
  });
}

Result<Webhook> SqliteStore::updateWebhook(std::string_view service_sid, std::string_view sid,
                                           const std::function<Status(Webhook&)>& change) {
  Webhook out;
  Status st = write([&](Db& db) -> Status {
    auto found = selectOne<Webhook>(db, kSelectWebhook, service_sid, sid, readWebhook);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    Webhook w = **found;
    if (auto c = change(w); !c) return c;
    w.sid = (*found)->sid;
    w.account_sid = (*found)->account_sid;
    w.service_sid = (*found)->service_sid;
    Query u = db.query(
        "UPDATE webhooks SET friendly_name = ?1, event_types = ?2, status = ?3, version = ?4, "
        "webhook_url = ?5, webhook_method = ?6, date_updated = ?7 WHERE service_sid = ?8 AND "
        "sid = ?9");
    u.bind(1, w.friendly_name).bind(2, json(w.event_types).dump()).bind(3, w.status);
    u.bind(4, w.version).bind(5, w.webhook_url).bind(6, w.webhook_method);
    u.bind(7, static_cast<std::int64_t>(w.date_updated)).bind(8, service_sid).bind(9, sid);
    if (auto s = u.run(); !s) return s;
    out = std::move(w);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Status SqliteStore::deleteWebhook(std::string_view service_sid, std::string_view sid) {
  return write([&](Db& db) -> Status {
    Query q = db.query("DELETE FROM webhooks WHERE service_sid = ?1 AND sid = ?2");
    if (auto s = q.bind(1, service_sid).bind(2, sid).run(); !s) return s;
    if (db.changes() == 0) return fail(Error::notFound());
    return {};
  });
}

// ---- webhook deliveries ---------------------------------------------------------------------

Status SqliteStore::enqueueDelivery(const WebhookDelivery& d) {
  return write([&](Db& db) { return insertDelivery(db, d); });
}

Result<std::vector<WebhookDelivery>> SqliteStore::claimWebhookDeliveries(
    std::int64_t now_ms, std::int64_t lease_ms, int limit, const std::string& lease_token) {
  std::vector<WebhookDelivery> claimed;
  Status st = write([&](Db& db) -> Status {
    claimed.clear();
    {
      // Due: queued ones whose next try has come, and sending ones whose lease ran out.
      Query q = db.query(std::string("SELECT ") + kDeliveryCols +
                         " FROM webhook_deliveries WHERE status IN ('queued', 'sending') AND "
                         "next_try_ms <= ?1 ORDER BY next_try_ms LIMIT ?2");
      q.bind(1, now_ms).bind(2, limit);
      for (;;) {
        auto row = q.step();
        if (!row) return fail(row.error());
        if (!*row) break;
        claimed.push_back(readDelivery(q));
      }
    }
    for (auto& d : claimed) {
      d.status = "sending";
      d.lease_token = lease_token;
      d.next_try_ms = now_ms + lease_ms;
      Query u = db.query(
          "UPDATE webhook_deliveries SET status = 'sending', lease_token = ?1, next_try_ms = ?2 "
          "WHERE sid = ?3");
      if (auto s = u.bind(1, lease_token).bind(2, d.next_try_ms).bind(3, d.sid).run(); !s) return s;
    }
    return {};
  });
  if (!st) return fail(st.error());
  return claimed;
}

Status SqliteStore::finishWebhookDelivery(const WebhookDelivery& d) {
  return write([&](Db& db) -> Status {
    {
      Query q = db.query("SELECT status, lease_token FROM webhook_deliveries WHERE sid = ?1");
      q.bind(1, d.sid);
      auto row = q.step();
      if (!row) return fail(row.error());
      if (!*row) return {};
      // Lost the lease (another worker took over): its outcome is the one that counts.
      if (q.text(0) != "sending" || q.text(1) != d.lease_token) return {};
    }
    Query u = db.query(
        "UPDATE webhook_deliveries SET status = ?1, tries = ?2, error = ?3, next_try_ms = ?4, "
        "lease_token = '', date_updated = ?5 WHERE sid = ?6");
    u.bind(1, d.status).bind(2, d.tries).bind(3, d.error).bind(4, d.next_try_ms);
    return u.bind(5, static_cast<std::int64_t>(d.date_updated)).bind(6, d.sid).run();
  });
}

Result<Page<WebhookDelivery>> SqliteStore::listWebhookDeliveries(std::string_view service_sid,
                                                                 PageCursor cursor, int page_size) {
  return read<Page<WebhookDelivery>>([&](Db& db) {
    return pageQuery<WebhookDelivery>(
        db, kDeliveryCols, "webhook_deliveries", "service_sid = ?1", 1, false, cursor, page_size,
        [&](Query& q) { q.bind(1, service_sid); }, readDelivery);
  });
}

}  // namespace verifyd
