// The FactorStore half of PgStore: entities, factors, challenges, access tokens, webhooks and
// the webhook deliveries (the outbox of events), stored as SqliteStore stores them (same
// records, ordering, paging by `seq`, error kinds).
//
// Atomicity across nodes: every read-modify-write holds its rows with SELECT … FOR UPDATE, and
// a transaction that holds rows of several kinds takes them in one order, entity, factor,
// challenge (mutateChallenge reads the challenge's factor sid first, then locks the factor and
// the challenge; deletes remove factors before their challenges), so two nodes never wait on
// each other in a cycle. write() retries a deadlock or serialization failure all the same.
// Events are fanned out to the service's webhooks in the transaction of their change.
#include <chrono>
#include <nlohmann/json.hpp>

#include "verifyd/storage/postgres/pg_conn.h"
#include "verifyd/storage/postgres/pg_store.h"

namespace verifyd {

using json = nlohmann::json;
using pg::change;
using pg::Conn;
using pg::pageQuery;
using pg::Params;
using pg::Rows;
using pg::run;
using pg::selectOne;

namespace {

UnixTime wallClock() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int toInt(std::int64_t v) { return static_cast<int>(v); }

// "$from, $from+1, …" for `n` parameters.
std::string placeholders(int n, int from = 1) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += ", ";
    out += "$" + std::to_string(from + i);
  }
  return out;
}

// "a = $from, b = $from+1, …" for the comma-separated columns `cols`.
std::string assignments(const std::string& cols, int from = 1) {
  std::string out;
  int k = from;
  for (std::size_t start = 0; start < cols.size();) {
    std::size_t comma = cols.find(", ", start);
    std::string col = cols.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!out.empty()) out += ", ";
    out += col + " = $" + std::to_string(k++);
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  return out;
}

// A fresh delivery sid: "WD" and 32 lower-case hex digits.
constexpr const char* kNewDeliverySid = "'WD' || replace(gen_random_uuid()::text, '-', '')";

// ---- entities

const std::string kEntityCols =
    "seq, sid, account_sid, service_sid, identity, date_created, date_updated";
const std::string kSelectEntity =
    "SELECT " + kEntityCols + " FROM entities WHERE service_sid = $1 AND identity = $2";

Entity readEntity(const Rows& r, int i) {
  return Entity{r.text(i, 1), r.text(i, 2),    r.text(i, 3),
                r.text(i, 4), r.integer(i, 5), r.integer(i, 6)};
}

// Inserts `e` unless its identity exists in the service (false then); concurrent inserts of
// one identity wait for each other and one wins. A sid that exists is a failure.
Result<bool> insertEntity(Conn& c, const Entity& e) {
  auto n = change(c,
                  "INSERT INTO entities(sid, account_sid, service_sid, identity, date_created, "
                  "date_updated) VALUES($1, $2, $3, $4, $5, $6) "
                  "ON CONFLICT(service_sid, identity) DO NOTHING",
                  Params()
                      .text(e.sid)
                      .text(e.account_sid)
                      .text(e.service_sid)
                      .text(e.identity)
                      .integer(e.date_created)
                      .integer(e.date_updated));
  if (!n) return fail(n.error());
  return *n == 1;
}

// ---- factors

// The ids, then every other field (what mutateFactor stores), in column order.
const std::string kFactorIds = "sid, account_sid, service_sid, entity_sid, identity";
const std::string kFactorFields =
    "friendly_name, status, factor_type, totp_alg, totp_skew, totp_code_length, "
    "totp_time_step, push_sdk_version, push_app_id, push_notification_platform, "
    "push_notification_token, metadata, secret_sealed, public_key, binding_alg, "
    "failed_attempts, last_step, date_created, date_updated";
constexpr int kFactorIdCount = 5, kFactorFieldCount = 19;
const std::string kFactorCols = "seq, " + kFactorIds + ", " + kFactorFields;
const std::string kSelectFactor =
    "SELECT " + kFactorCols + " FROM factors WHERE sid = $1 AND service_sid = $2 AND identity = $3";

Factor readFactor(const Rows& r, int i) {
  Factor f;
  f.sid = r.text(i, 1);
  f.account_sid = r.text(i, 2);
  f.service_sid = r.text(i, 3);
  f.entity_sid = r.text(i, 4);
  f.identity = r.text(i, 5);
  f.friendly_name = r.text(i, 6);
  f.status = r.text(i, 7);
  f.factor_type = r.text(i, 8);
  f.totp.alg = r.text(i, 9);
  f.totp.skew = toInt(r.integer(i, 10));
  f.totp.code_length = toInt(r.integer(i, 11));
  f.totp.time_step = toInt(r.integer(i, 12));
  f.push.sdk_version = r.text(i, 13);
  f.push.app_id = r.text(i, 14);
  f.push.notification_platform = r.text(i, 15);
  f.push.notification_token = r.text(i, 16);
  f.metadata = r.optText(i, 17);
  f.secret_sealed = r.bytes(i, 18);
  f.public_key = r.text(i, 19);
  f.binding_alg = r.text(i, 20);
  f.failed_attempts = toInt(r.integer(i, 21));
  f.last_step = r.integer(i, 22);
  f.date_created = r.integer(i, 23);
  f.date_updated = r.integer(i, 24);
  return f;
}

// Appends the values of kFactorFields.
void addFactorFields(Params& p, const Factor& f) {
  p.text(f.friendly_name).text(f.status).text(f.factor_type);
  p.text(f.totp.alg).integer(f.totp.skew).integer(f.totp.code_length).integer(f.totp.time_step);
  p.text(f.push.sdk_version).text(f.push.app_id).text(f.push.notification_platform);
  p.text(f.push.notification_token).optText(f.metadata).bytes(f.secret_sealed);
  p.text(f.public_key).text(f.binding_alg).integer(f.failed_attempts).integer(f.last_step);
  p.integer(f.date_created).integer(f.date_updated);
}

Status insertFactor(Conn& c, const Factor& f) {
  static const std::string sql = "INSERT INTO factors(" + kFactorIds + ", " + kFactorFields +
                                 ") VALUES(" + placeholders(kFactorIdCount + kFactorFieldCount) +
                                 ")";
  Params p;
  p.text(f.sid).text(f.account_sid).text(f.service_sid).text(f.entity_sid).text(f.identity);
  addFactorFields(p, f);
  return run(c, sql, p);
}

// Every field but the ids (sid, account, service, entity, identity).
Status updateFactor(Conn& c, const Factor& f) {
  static const std::string sql = "UPDATE factors SET " + assignments(kFactorFields) +
                                 " WHERE sid = $" + std::to_string(kFactorFieldCount + 1) +
                                 " AND service_sid = $" + std::to_string(kFactorFieldCount + 2) +
                                 " AND identity = $" + std::to_string(kFactorFieldCount + 3);
  Params p;
  addFactorFields(p, f);
  p.text(f.sid).text(f.service_sid).text(f.identity);
  return run(c, sql, p);
}

void keepIds(Factor& f, const Factor& stored) {
  f.sid = stored.sid;
  f.account_sid = stored.account_sid;
  f.service_sid = stored.service_sid;
  f.entity_sid = stored.entity_sid;
  f.identity = stored.identity;
}

// ---- challenges

const std::string kChallengeIds = "sid, account_sid, service_sid, entity_sid, identity, factor_sid";
const std::string kChallengeFields =
    "factor_type, status, responded_reason, details_message, details_fields, hidden_details, "
    "metadata, expiration_date, date_responded, failed_attempts, date_created, date_updated";
constexpr int kChallengeIdCount = 6, kChallengeFieldCount = 12;
const std::string kChallengeCols = "seq, " + kChallengeIds + ", " + kChallengeFields;
const std::string kSelectChallenge = "SELECT " + kChallengeCols +
                                     " FROM challenges WHERE sid = $1 AND service_sid = $2 AND "
                                     "identity = $3";

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

Challenge readChallenge(const Rows& r, int i) {
  Challenge c;
  c.sid = r.text(i, 1);
  c.account_sid = r.text(i, 2);
  c.service_sid = r.text(i, 3);
  c.entity_sid = r.text(i, 4);
  c.identity = r.text(i, 5);
  c.factor_sid = r.text(i, 6);
  c.factor_type = r.text(i, 7);
  c.status = r.text(i, 8);
  c.responded_reason = r.text(i, 9);
  c.details_message = r.text(i, 10);
  c.details_fields = decodeFields(r.text(i, 11));
  c.hidden_details = r.optText(i, 12);
  c.metadata = r.optText(i, 13);
  c.expiration_date = r.integer(i, 14);
  c.date_responded = r.integer(i, 15);
  c.failed_attempts = toInt(r.integer(i, 16));
  c.date_created = r.integer(i, 17);
  c.date_updated = r.integer(i, 18);
  return c;
}

// Appends the values of kChallengeFields.
void addChallengeFields(Params& p, const Challenge& c) {
  p.text(c.factor_type).text(c.status).text(c.responded_reason).text(c.details_message);
  p.text(encodeFields(c.details_fields)).optText(c.hidden_details).optText(c.metadata);
  p.integer(c.expiration_date).integer(c.date_responded).integer(c.failed_attempts);
  p.integer(c.date_created).integer(c.date_updated);
}

Status insertChallenge(Conn& c, const Challenge& ch) {
  static const std::string sql = "INSERT INTO challenges(" + kChallengeIds + ", " +
                                 kChallengeFields + ") VALUES(" +
                                 placeholders(kChallengeIdCount + kChallengeFieldCount) + ")";
  Params p;
  p.text(ch.sid).text(ch.account_sid).text(ch.service_sid).text(ch.entity_sid);
  p.text(ch.identity).text(ch.factor_sid);
  addChallengeFields(p, ch);
  return run(c, sql, p);
}

// Every field but the ids (sid, account, service, entity, identity, factor).
Status updateChallenge(Conn& c, const Challenge& ch) {
  static const std::string sql = "UPDATE challenges SET " + assignments(kChallengeFields) +
                                 " WHERE sid = $" + std::to_string(kChallengeFieldCount + 1) +
                                 " AND service_sid = $" + std::to_string(kChallengeFieldCount + 2) +
                                 " AND identity = $" + std::to_string(kChallengeFieldCount + 3);
  Params p;
  addChallengeFields(p, ch);
  p.text(ch.sid).text(ch.service_sid).text(ch.identity);
  return run(c, sql, p);
}

// ---- access tokens

const std::string kAccessTokenCols =
    "seq, sid, account_sid, service_sid, entity_identity, factor_type, factor_friendly_name, "
    "token, ttl, date_created";

AccessToken readAccessToken(const Rows& r, int i) {
  AccessToken t;
  t.sid = r.text(i, 1);
  t.account_sid = r.text(i, 2);
  t.service_sid = r.text(i, 3);
  t.entity_identity = r.text(i, 4);
  t.factor_type = r.text(i, 5);
  t.factor_friendly_name = r.optText(i, 6);
  t.token = r.text(i, 7);
  t.ttl = toInt(r.integer(i, 8));
  t.date_created = r.integer(i, 9);
  return t;
}

// ---- webhooks

const std::string kWebhookCols =
    "seq, sid, account_sid, service_sid, friendly_name, event_types, status, version, "
    "webhook_url, webhook_method, date_created, date_updated";
const std::string kSelectWebhook =
    "SELECT " + kWebhookCols + " FROM webhooks WHERE service_sid = $1 AND sid = $2";

Webhook readWebhook(const Rows& r, int i) {
  Webhook w;
  w.sid = r.text(i, 1);
  w.account_sid = r.text(i, 2);
  w.service_sid = r.text(i, 3);
  w.friendly_name = r.text(i, 4);
  w.event_types = json::parse(r.text(i, 5)).get<std::vector<std::string>>();
  w.status = r.text(i, 6);
  w.version = r.text(i, 7);
  w.webhook_url = r.text(i, 8);
  w.webhook_method = r.text(i, 9);
  w.date_created = r.integer(i, 10);
  w.date_updated = r.integer(i, 11);
  return w;
}

// ---- webhook deliveries

const std::string kDeliveryFields =
    "sid, kind, account_sid, service_sid, webhook_sid, url, body, status, tries, error, "
    "next_try_ms, lease_token, date_created, date_updated";
const std::string kDeliveryCols = "seq, " + kDeliveryFields;

WebhookDelivery readDelivery(const Rows& r, int i) {
  WebhookDelivery d;
  d.sid = r.text(i, 1);
  d.kind = r.text(i, 2);
  d.account_sid = r.text(i, 3);
  d.service_sid = r.text(i, 4);
  d.webhook_sid = r.text(i, 5);
  d.url = r.text(i, 6);
  d.body = r.text(i, 7);
  d.status = r.text(i, 8);
  d.tries = toInt(r.integer(i, 9));
  d.error = r.text(i, 10);
  d.next_try_ms = r.integer(i, 11);
  d.lease_token = r.text(i, 12);
  d.date_created = r.integer(i, 13);
  d.date_updated = r.integer(i, 14);
  return d;
}

// Inserts `d` as given; an empty sid gets a fresh one.
Status insertDelivery(Conn& c, const WebhookDelivery& d) {
  static const std::string sql = "INSERT INTO webhook_deliveries(" + kDeliveryFields +
                                 ") VALUES(COALESCE(NULLIF($1::text, " + "''), " + kNewDeliverySid +
                                 "), " + placeholders(13, 2) + ")";
  Params p;
  p.text(d.sid).text(d.kind).text(d.account_sid).text(d.service_sid).text(d.webhook_sid);
  p.text(d.url).text(d.body).text(d.status).integer(d.tries).text(d.error);
  p.integer(d.next_try_ms).text(d.lease_token).integer(d.date_created).integer(d.date_updated);
  return run(c, sql, p);
}

// Queues one delivery of each event to every enabled webhook of the service subscribed to its
// type or to "*". Runs in the transaction of the change that raised the events.
Status fanOut(Conn& c, std::string_view service_sid, const std::vector<WebhookEvent>& events,
              UnixTime now) {
  static const std::string sql =
      "INSERT INTO webhook_deliveries(" + kDeliveryFields + ") SELECT " + kNewDeliverySid +
      ", 'webhook', w.account_sid, w.service_sid, w.sid, w.webhook_url, $2, 'queued', 0, '', 0, "
      "'', $4, $4 FROM webhooks w WHERE w.service_sid = $1 AND w.status = 'enabled' AND "
      "EXISTS(SELECT 1 FROM jsonb_array_elements_text(w.event_types::jsonb) t(type) WHERE "
      "t.type IN ($3, '*')) ORDER BY w.seq";
  for (const auto& e : events)
    if (auto st = run(c, sql, Params().text(service_sid).text(e.payload).text(e.type).integer(now));
        !st)
      return st;
  return {};
}

}  // namespace

// ---- entities -------------------------------------------------------------------------------

Status PgStore::createEntity(const Entity& e) {
  return write([&](Conn& c) -> Status {
    auto inserted = insertEntity(c, e);
    if (!inserted) return fail(inserted.error());
    if (!*inserted)
      return fail(Error::of(ErrorKind::kDuplicateEntity,
                            "An Entity with identity " + e.identity + " already exists"));
    return {};
  });
}

Result<Entity> PgStore::getOrCreateEntity(const Entity& e) {
  Entity out;
  Status st = write([&](Conn& c) -> Status {
    // Either this insert wins, or the row another transaction committed is read (each
    // statement of a READ COMMITTED transaction sees what was committed before it started).
    // The loop covers that row being deleted in between.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto inserted = insertEntity(c, e);
      if (!inserted) return fail(inserted.error());
      if (*inserted) {
        out = e;
        return {};
      }
      auto found = selectOne<Entity>(c, kSelectEntity,
                                     Params().text(e.service_sid).text(e.identity), readEntity);
      if (!found) return fail(found.error());
      if (*found) {
        out = std::move(**found);
        return {};
      }
    }
    return fail(Error::unavailable("postgres: entity " + e.identity + " keeps changing"));
  });
  if (!st) return fail(st.error());
  return out;
}

Result<std::optional<Entity>> PgStore::getEntity(std::string_view service_sid,
                                                 std::string_view identity) {
  return read<std::optional<Entity>>([&](Conn& c) {
    return selectOne<Entity>(c, kSelectEntity, Params().text(service_sid).text(identity),
                             readEntity);
  });
}

Result<Page<Entity>> PgStore::listEntities(std::string_view service_sid, PageCursor cursor,
                                           int page_size) {
  return read<Page<Entity>>([&](Conn& c) {
    return pageQuery<Entity>(c, kEntityCols, "entities", "service_sid = $1",
                             Params().text(service_sid), true, cursor, page_size, readEntity);
  });
}

Status PgStore::deleteEntity(std::string_view service_sid, std::string_view identity,
                             const std::vector<WebhookEvent>& events) {
  UnixTime now = wallClock();
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM entities WHERE service_sid = $1 AND identity = $2",
                    Params().text(service_sid).text(identity));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    // Factors before challenges: the order every transaction locks them in.
    for (const char* sql : {"DELETE FROM factors WHERE service_sid = $1 AND identity = $2",
                            "DELETE FROM challenges WHERE service_sid = $1 AND identity = $2"})
      if (auto st = run(c, sql, Params().text(service_sid).text(identity)); !st) return st;
    return fanOut(c, service_sid, events, now);
  });
}

// ---- factors --------------------------------------------------------------------------------

Status PgStore::createFactor(const Factor& f, const std::vector<WebhookEvent>& events) {
  return write([&](Conn& c) -> Status {
    if (auto st = insertFactor(c, f); !st) return st;
    return fanOut(c, f.service_sid, events, f.date_created);
  });
}

Result<std::optional<Factor>> PgStore::getFactor(std::string_view service_sid,
                                                 std::string_view identity, std::string_view sid) {
  return read<std::optional<Factor>>([&](Conn& c) {
    return selectOne<Factor>(c, kSelectFactor, Params().text(sid).text(service_sid).text(identity),
                             readFactor);
  });
}

Result<Page<Factor>> PgStore::listFactors(std::string_view service_sid, std::string_view identity,
                                          PageCursor cursor, int page_size) {
  return read<Page<Factor>>([&](Conn& c) {
    return pageQuery<Factor>(c, kFactorCols, "factors", "service_sid = $1 AND identity = $2",
                             Params().text(service_sid).text(identity), true, cursor, page_size,
                             readFactor);
  });
}

Result<Factor> PgStore::mutateFactor(
    std::string_view service_sid, std::string_view identity, std::string_view sid,
    const std::function<Result<FactorChange>(const Factor&)>& change) {
  Factor out;
  Status st = write([&](Conn& c) -> Status {
    auto found = selectOne<Factor>(c, kSelectFactor + " FOR UPDATE",
                                   Params().text(sid).text(service_sid).text(identity), readFactor);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    auto changed = change(**found);
    if (!changed) return fail(changed.error());
    Factor f = std::move(changed->factor);
    keepIds(f, **found);
    if (auto s = updateFactor(c, f); !s) return s;
    if (auto s = fanOut(c, f.service_sid, changed->events, f.date_updated); !s) return s;
    out = std::move(f);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Status PgStore::deleteFactor(std::string_view service_sid, std::string_view identity,
                             std::string_view sid, const std::vector<WebhookEvent>& events) {
  UnixTime now = wallClock();
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM factors WHERE sid = $1 AND service_sid = $2 AND identity = $3",
                    Params().text(sid).text(service_sid).text(identity));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    if (auto st = run(c, "DELETE FROM challenges WHERE factor_sid = $1", Params().text(sid)); !st)
      return st;
    return fanOut(c, service_sid, events, now);
  });
}

Result<int> PgStore::purgeUnverifiedFactors(UnixTime before) {
  int purged = 0;
  Status st = write([&](Conn& c) -> Status {
    // The factors first, then their challenges, in one statement.
    auto n = pg::scalar(c,
                        "WITH gone AS (DELETE FROM factors WHERE status = 'unverified' AND "
                        "date_created < $1 RETURNING sid), "
                        "gone_challenges AS (DELETE FROM challenges WHERE factor_sid IN (SELECT "
                        "sid FROM gone)) SELECT COUNT(*) FROM gone",
                        Params().integer(before));
    if (!n) return fail(n.error());
    purged = toInt(*n);
    return {};
  });
  if (!st) return fail(st.error());
  return purged;
}

Result<int> PgStore::resealFactorSecrets(
    const std::function<Result<std::string>(const std::string&)>& reseal) {
  int resealed = 0;
  Status st = write([&](Conn& c) -> Status {
    resealed = 0;
    auto r = c.query(
        "SELECT sid, secret_sealed FROM factors WHERE octet_length(secret_sealed) > 0 ORDER BY "
        "seq FOR UPDATE",
        Params());
    if (!r) return fail(r.error());
    for (int i = 0; i < r->size(); ++i) {
      auto fresh = reseal(r->bytes(i, 1));
      if (!fresh) return fail(fresh.error());
      if (auto s = run(c, "UPDATE factors SET secret_sealed = $1 WHERE sid = $2",
                       Params().bytes(*fresh).text(r->text(i, 0)));
          !s)
        return s;
      ++resealed;
    }
    return {};
  });
  if (!st) return fail(st.error());
  return resealed;
}

// ---- challenges -----------------------------------------------------------------------------

Status PgStore::createChallenge(const Challenge& c, const std::vector<WebhookEvent>& events,
                                const std::optional<WebhookDelivery>& push) {
  return write([&](Conn& conn) -> Status {
    if (auto st = insertChallenge(conn, c); !st) return st;
    if (auto st = fanOut(conn, c.service_sid, events, c.date_created); !st) return st;
    if (!push) return {};
    WebhookDelivery d = *push;
    d.kind = "push";
    return insertDelivery(conn, d);
  });
}

Result<std::optional<Challenge>> PgStore::getChallenge(std::string_view service_sid,
                                                       std::string_view identity,
                                                       std::string_view sid) {
  return read<std::optional<Challenge>>([&](Conn& c) {
    return selectOne<Challenge>(c, kSelectChallenge,
                                Params().text(sid).text(service_sid).text(identity), readChallenge);
  });
}

Result<Page<Challenge>> PgStore::listChallenges(std::string_view service_sid,
                                                std::string_view identity,
                                                const ChallengeFilter& filter, PageCursor cursor,
                                                int page_size) {
  return read<Page<Challenge>>([&](Conn& c) {
    std::string where = "service_sid = $1 AND identity = $2";
    Params params;
    params.text(service_sid).text(identity);
    if (!filter.factor_sid.empty()) {
      params.text(filter.factor_sid);
      where += " AND factor_sid = $" + std::to_string(params.size());
    }
    if (!filter.status.empty()) {
      params.text(filter.status);
      where += " AND status = $" + std::to_string(params.size());
    }
    return pageQuery<Challenge>(c, kChallengeCols, "challenges", where, params, !filter.descending,
                                cursor, page_size, readChallenge);
  });
}

Result<Challenge> PgStore::mutateChallenge(
    std::string_view service_sid, std::string_view identity, std::string_view sid,
    const std::function<Result<ChallengeChange>(const Challenge&, const Factor&)>& change) {
  Challenge out;
  Status st = write([&](Conn& c) -> Status {
    const Params key = Params().text(sid).text(service_sid).text(identity);
    // The factor is locked before the challenge (the order deletes take them in); a
    // challenge's factor never changes, so reading it unlocked first is safe.
    auto factor_sid = selectOne<std::string>(
        c,
        "SELECT factor_sid FROM challenges WHERE sid = $1 AND service_sid = $2 AND identity = $3",
        key, [](const Rows& r, int i) { return r.text(i, 0); });
    if (!factor_sid) return fail(factor_sid.error());
    if (!*factor_sid) return fail(Error::notFound());
    auto factor =
        selectOne<Factor>(c, kSelectFactor + " FOR UPDATE",
                          Params().text(**factor_sid).text(service_sid).text(identity), readFactor);
    if (!factor) return fail(factor.error());
    if (!*factor) return fail(Error::notFound());
    auto challenge = selectOne<Challenge>(c, kSelectChallenge + " FOR UPDATE", key, readChallenge);
    if (!challenge) return fail(challenge.error());
    if (!*challenge) return fail(Error::notFound());  // deleted meanwhile
    auto changed = change(**challenge, **factor);
    if (!changed) return fail(changed.error());
    Challenge ch = std::move(changed->challenge);
    ch.sid = (*challenge)->sid;
    ch.account_sid = (*challenge)->account_sid;
    ch.service_sid = (*challenge)->service_sid;
    ch.entity_sid = (*challenge)->entity_sid;
    ch.identity = (*challenge)->identity;
    ch.factor_sid = (*challenge)->factor_sid;
    Factor f = std::move(changed->factor);
    keepIds(f, **factor);
    if (auto s = updateChallenge(c, ch); !s) return s;
    if (auto s = updateFactor(c, f); !s) return s;
    if (auto s = fanOut(c, ch.service_sid, changed->events, ch.date_updated); !s) return s;
    out = std::move(ch);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

// ---- access tokens --------------------------------------------------------------------------

Status PgStore::createAccessToken(const AccessToken& t) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO access_tokens(sid, account_sid, service_sid, entity_identity, "
               "factor_type, factor_friendly_name, token, ttl, date_created) VALUES($1, $2, $3, "
               "$4, $5, $6, $7, $8, $9)",
               Params()
                   .text(t.sid)
                   .text(t.account_sid)
                   .text(t.service_sid)
                   .text(t.entity_identity)
                   .text(t.factor_type)
                   .optText(t.factor_friendly_name)
                   .text(t.token)
                   .integer(t.ttl)
                   .integer(t.date_created));
  });
}

Result<std::optional<AccessToken>> PgStore::getAccessToken(std::string_view service_sid,
                                                           std::string_view sid) {
  return read<std::optional<AccessToken>>([&](Conn& c) {
    return selectOne<AccessToken>(
        c, "SELECT " + kAccessTokenCols + " FROM access_tokens WHERE service_sid = $1 AND sid = $2",
        Params().text(service_sid).text(sid), readAccessToken);
  });
}

// ---- webhooks -------------------------------------------------------------------------------

Status PgStore::createWebhook(const Webhook& w) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO webhooks(sid, account_sid, service_sid, friendly_name, event_types, "
               "status, version, webhook_url, webhook_method, date_created, date_updated) "
               "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
               Params()
                   .text(w.sid)
                   .text(w.account_sid)
                   .text(w.service_sid)
                   .text(w.friendly_name)
                   .text(json(w.event_types).dump())
                   .text(w.status)
                   .text(w.version)
                   .text(w.webhook_url)
                   .text(w.webhook_method)
                   .integer(w.date_created)
                   .integer(w.date_updated));
  });
}

Result<std::optional<Webhook>> PgStore::getWebhook(std::string_view service_sid,
                                                   std::string_view sid) {
  return read<std::optional<Webhook>>([&](Conn& c) {
    return selectOne<Webhook>(c, kSelectWebhook, Params().text(service_sid).text(sid), readWebhook);
  });
}

Result<Page<Webhook>> PgStore::listWebhooks(std::string_view service_sid, PageCursor cursor,
                                            int page_size) {
  return read<Page<Webhook>>([&](Conn& c) {
    return pageQuery<Webhook>(c, kWebhookCols, "webhooks", "service_sid = $1",
                              Params().text(service_sid), true, cursor, page_size, readWebhook);
  });
}

Result<Webhook> PgStore::updateWebhook(std::string_view service_sid, std::string_view sid,
                                       const std::function<Status(Webhook&)>& change) {
  Webhook out;
  Status st = write([&](Conn& c) -> Status {
    auto found = selectOne<Webhook>(c, kSelectWebhook + " FOR UPDATE",
                                    Params().text(service_sid).text(sid), readWebhook);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    Webhook w = **found;
    if (auto ch = change(w); !ch) return ch;
    w.sid = (*found)->sid;
    w.account_sid = (*found)->account_sid;
    w.service_sid = (*found)->service_sid;
    if (auto s = run(c,
                     "UPDATE webhooks SET friendly_name = $1, event_types = $2, status = $3, "
                     "version = $4, webhook_url = $5, webhook_method = $6, date_updated = $7 "
                     "WHERE service_sid = $8 AND sid = $9",
                     Params()
                         .text(w.friendly_name)
                         .text(json(w.event_types).dump())
                         .text(w.status)
                         .text(w.version)
                         .text(w.webhook_url)
                         .text(w.webhook_method)
                         .integer(w.date_updated)
                         .text(service_sid)
                         .text(sid));
        !s)
      return s;
    out = std::move(w);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Status PgStore::deleteWebhook(std::string_view service_sid, std::string_view sid) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM webhooks WHERE service_sid = $1 AND sid = $2",
                    Params().text(service_sid).text(sid));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    return {};
  });
}

// ---- webhook deliveries ---------------------------------------------------------------------

Status PgStore::enqueueDelivery(const WebhookDelivery& d) {
  return write([&](Conn& c) { return insertDelivery(c, d); });
}

Result<std::vector<WebhookDelivery>> PgStore::claimWebhookDeliveries(
    std::int64_t now_ms, std::int64_t lease_ms, int limit, const std::string& lease_token) {
  std::vector<WebhookDelivery> claimed;
  Status st = write([&](Conn& c) -> Status {
    claimed.clear();
    // Due: queued ones whose next try has come, and sending ones whose lease ran out. Rows
    // another node is claiming right now are skipped, not waited for: none is taken twice.
    auto r = c.query("SELECT " + kDeliveryCols +
                         " FROM webhook_deliveries WHERE status IN ('queued', 'sending') AND "
                         "next_try_ms <= $1 ORDER BY next_try_ms, seq LIMIT $2 "
                         "FOR UPDATE SKIP LOCKED",
                     Params().integer(now_ms).integer(limit));
    if (!r) return fail(r.error());
    if (r->empty()) return {};
    std::string seqs = "{";
    for (int i = 0; i < r->size(); ++i) {
      WebhookDelivery d = readDelivery(*r, i);
      d.status = "sending";
      d.lease_token = lease_token;
      d.next_try_ms = now_ms + lease_ms;
      claimed.push_back(std::move(d));
      if (i) seqs += ",";
      seqs += std::to_string(r->integer(i, 0));
    }
    seqs += "}";
    return run(c,
               "UPDATE webhook_deliveries SET status = 'sending', lease_token = $1, "
               "next_try_ms = $2 WHERE seq = ANY($3::bigint[])",
               Params().text(lease_token).integer(now_ms + lease_ms).text(seqs));
  });
  if (!st) return fail(st.error());
  return claimed;
}

Status PgStore::finishWebhookDelivery(const WebhookDelivery& d) {
  return write([&](Conn& c) -> Status {
    auto r = c.query("SELECT status, lease_token FROM webhook_deliveries WHERE sid = $1 FOR UPDATE",
                     Params().text(d.sid));
    if (!r) return fail(r.error());
    if (r->empty()) return {};
    // Lost the lease (another worker took over): its outcome is the one that counts.
    if (r->text(0, 0) != "sending" || r->text(0, 1) != d.lease_token) return {};
    return run(c,
               "UPDATE webhook_deliveries SET status = $1, tries = $2, error = $3, "
               "next_try_ms = $4, lease_token = '', date_updated = $5 WHERE sid = $6",
               Params()
                   .text(d.status)
                   .integer(d.tries)
                   .text(d.error)
                   .integer(d.next_try_ms)
                   .integer(d.date_updated)
                   .text(d.sid));
  });
}

Result<Page<WebhookDelivery>> PgStore::listWebhookDeliveries(std::string_view service_sid,
                                                             PageCursor cursor, int page_size) {
  return read<Page<WebhookDelivery>>([&](Conn& c) {
    return pageQuery<WebhookDelivery>(c, kDeliveryCols, "webhook_deliveries", "service_sid = $1",
                                      Params().text(service_sid), false, cursor, page_size,
                                      readDelivery);
  });
}

}  // namespace verifyd
