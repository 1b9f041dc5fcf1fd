#include "verifyd/core/factors.h"

#include <algorithm>
#include <cctype>

#include "verifyd/common/base32.h"
#include "verifyd/common/sid.h"
#include "verifyd/common/time_format.h"
#include "verifyd/core/totp.h"

namespace verifyd {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr const char* kPending = "pending";
constexpr const char* kExpired = "expired";
constexpr const char* kApproved = "approved";
constexpr const char* kDenied = "denied";
constexpr const char* kVerified = "verified";
constexpr const char* kUnverified = "unverified";

const std::vector<std::string> kEventTypes = {"*",
                                              "factor.created",
                                              "factor.verified",
                                              "factor.deleted",
                                              "challenge.approved",
                                              "challenge.denied"};

// An entity identity: 8-64 letters, digits, '-' or '_' (Twilio: immutable, no PII).
bool validIdentity(const std::string& s) {
  return s.size() >= 8 && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_';
         });
}

bool oneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; });
}

// A JSON object of strings (Metadata, HiddenDetails) of at most `max_chars` characters.
Status jsonStringMap(const std::string& text, std::size_t max_chars, const char* param) {
  if (text.size() > max_chars)
    return fail(Error::invalid(param, "at most " + std::to_string(max_chars) + " characters"));
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return fail(Error::invalid(param, "must be a JSON object"));
  for (auto& [k, v] : j.items())
    if (!v.is_string())
      return fail(Error::invalid(param, "the value of '" + k + "' must be a string"));
  return {};
}

Status checkLength(const std::optional<std::string>& v, std::size_t lo, std::size_t hi,
                   const char* param) {
  if (v && (v->size() < lo || v->size() > hi))
    return fail(
        Error::invalid(param, std::to_string(lo) + " to " + std::to_string(hi) + " characters"));
  return {};
}

Status checkRange(const std::optional<int>& v, int lo, int hi, const char* param) {
  if (v && (*v < lo || *v > hi))
    return fail(
        Error::invalid(param, "between " + std::to_string(lo) + " and " + std::to_string(hi)));
  return {};
}

Status checkAlg(const std::optional<std::string>& alg) {
  if (alg && !oneOf(*alg, {"sha1", "sha256", "sha512"}))
    return fail(Error::invalid("Config.Alg", "sha1, sha256 or sha512"));
  return {};
}

Status checkPlatform(const std::optional<std::string>& platform) {
  if (platform && !oneOf(*platform, {"apn", "fcm", "none"}))
    return fail(Error::invalid("Config.NotificationPlatform", "apn, fcm or none"));
  return {};
}

bool validWebhookUrl(const std::string& url) {
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0)
    rest.remove_prefix(8);
  else if (rest.rfind("http://", 0) == 0)
    rest.remove_prefix(7);
  else
    return false;
  if (rest.empty() || rest.front() == '/' || url.size() > 2048) return false;
  return std::none_of(url.begin(), url.end(),
                      [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

Status checkEventTypes(const std::vector<std::string>& types) {
  if (types.empty()) return fail(Error::missing("EventTypes"));
  for (const auto& t : types)
    if (std::find(kEventTypes.begin(), kEventTypes.end(), t) == kEventTypes.end())
      return fail(Error::invalid("EventTypes", "unknown event type '" + t + "'"));
  return {};
}

// A pending challenge past its expiration reads as expired.
bool expiredAt(const Challenge& c, UnixTime now) {
  return c.status == kPending && now >= c.expiration_date;
}

}  // namespace

// ---- rendering shared with the API ----------------------------------------------------------

const std::vector<std::string>& challengeSignatureFields() {
  static const std::vector<std::string> fields = {
      "sid",         "account_sid",  "service_sid",     "entity_sid", "identity",      "factor_sid",
      "factor_type", "date_created", "expiration_date", "details",    "hidden_details"};
  return fields;
}

std::string challengeSignatureFieldsHeader() {
  std::string out;
  for (const auto& f : challengeSignatureFields()) out += (out.empty() ? "" : ",") + f;
  return out;
}

ojson challengeDetailsJson(const Challenge& c, bool include_date) {
  ojson d;
  d["message"] = c.details_message;
  if (include_date) d["date"] = formatIso8601(c.date_created);
  ojson fields = ojson::array();
  for (const auto& f : c.details_fields) fields.push_back({{"label", f.label}, {"value", f.value}});
  d["fields"] = std::move(fields);
  return d;
}

ojson jsonObjectOrNull(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  auto j = ojson::parse(*text, nullptr, false);
  return j.is_object() ? j : ojson(nullptr);
}

ojson challengeSignedValues(const Challenge& c, bool include_date) {
  ojson j;
  j["sid"] = c.sid;
  j["account_sid"] = c.account_sid;
  j["service_sid"] = c.service_sid;
  j["entity_sid"] = c.entity_sid;
  j["identity"] = c.identity;
  j["factor_sid"] = c.factor_sid;
  j["factor_type"] = c.factor_type;
  j["date_created"] = formatIso8601(c.date_created);
  j["expiration_date"] = formatIso8601(c.expiration_date);
  j["details"] = challengeDetailsJson(c, include_date);
  j["hidden_details"] = jsonObjectOrNull(c.hidden_details);
  return j;
}

// ---- the service ------------------------------------------------------------------------------

FactorService::FactorService(ServiceStore& services, FactorStore& store, const FactorCrypto& crypto,
                             Clock& clock, Random& random, FactorOptions options,
                             Delivery* delivery)
    : services_(services),
      store_(store),
      crypto_(crypto),
      clock_(clock),
      random_(random),
      options_(options),
      delivery_(delivery) {}

Result<Service> FactorService::ownService(const std::string& account_sid,
                                          const std::string& service_sid) {
  auto svc = services_.getService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  if (!*svc) return fail(Error::notFound());
  return std::move(**svc);
}

Result<Factor> FactorService::findFactor(const std::string& service_sid,
                                         const std::string& identity, const std::string& sid) {
  auto found = store_.getFactor(service_sid, identity, sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<Challenge> FactorService::findChallenge(const std::string& service_sid,
                                               const std::string& identity,
                                               const std::string& sid) {
  auto found = store_.getChallenge(service_sid, identity, sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<std::string> FactorService::seed(const Factor& f) const {
  auto opened = crypto_.openSecret(f.secret_sealed);
  // A secret that does not open is a key problem of the operator's, never the caller's.
  if (!opened)
    return fail(Error::internal("the secret of factor " + f.sid +
                                " does not open with the factor key: " + opened.error().message));
  return opened;
}

std::string FactorService::uuid() {
  std::string b = random_.bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = toHex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

WebhookEvent FactorService::factorEvent(const std::string& type, const Factor& f) {
  ojson j;
  j["uuid"] = uuid();
  j["type"] = type;
  j["account_sid"] = f.account_sid;
  j["service_sid"] = f.service_sid;
  j["entity_identity"] = f.identity;
  j["factor_sid"] = f.sid;
  j["factor_type"] = f.factor_type;
  j["factor_friendly_name"] = f.friendly_name;
  if (f.metadata) j["factor_metadata"] = *f.metadata;
  j["date_created"] = formatIso8601(clock_.now());
  return WebhookEvent{type, j.dump()};
}

WebhookEvent FactorService::challengeEvent(const std::string& type, const Challenge& c,
                                           const Factor& f, bool include_date) {
  ojson j;
  j["uuid"] = uuid();
  j["type"] = type;
  j["account_sid"] = c.account_sid;
  j["service_sid"] = c.service_sid;
  j["entity_identity"] = c.identity;
  j["factor_sid"] = c.factor_sid;
  j["factor_type"] = c.factor_type;
  j["factor_friendly_name"] = f.friendly_name;
  j["challenge_sid"] = c.sid;
  j["challenge_details"] = challengeDetailsJson(c, include_date).dump();
  if (c.hidden_details) j["challenge_hidden_details"] = *c.hidden_details;
  if (c.metadata) j["challenge_metadata"] = *c.metadata;
  j["challenge_status"] = c.status;
  j["challenge_responded_reason"] = c.responded_reason;
  j["date_created"] = formatIso8601(clock_.now());
  return WebhookEvent{type, j.dump()};
}

WebhookDelivery FactorService::pushDelivery(const Challenge& c, const Factor& f, int ttl,
                                            UnixTime now) {
  ojson body;
  body["platform"] = f.push.notification_platform;
  body["token"] = f.push.notification_token;
  body["challenge_sid"] = c.sid;
  body["factor_sid"] = f.sid;
  body["service_sid"] = c.service_sid;
  body["entity_identity"] = c.identity;
  body["message"] = c.details_message;
  body["ttl"] = ttl;
  body["priority"] = "high";
  WebhookDelivery d;
  d.sid = makeSid("WD", random_);
  d.kind = "push";
  d.account_sid = c.account_sid;
  d.service_sid = c.service_sid;
  d.body = body.dump();
  d.next_try_ms = static_cast<std::int64_t>(now) * 1000;
  d.date_created = d.date_updated = now;
  return d;
}

void FactorService::notify() {
  if (delivery_) delivery_->eventsQueued();
}

// ---- entities -------------------------------------------------------------------------------

Result<Entity> FactorService::createEntity(const std::string& account_sid,
                                           const std::string& service_sid,
                                           const std::optional<std::string>& identity) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  if (!identity) return fail(Error::missing("Identity"));
  if (!validIdentity(*identity))
    return fail(Error::invalid("Identity", "8 to 64 letters, digits, '-' or '_'"));
  const UnixTime now = clock_.now();
  Entity e{makeSid("YE", random_), account_sid, service_sid, *identity, now, now};
  if (auto st = store_.createEntity(e); !st) return fail(st.error());
  return e;
}

Result<Entity> FactorService::fetchEntity(const std::string& account_sid,
                                          const std::string& service_sid,
                                          const std::string& identity) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  auto found = store_.getEntity(service_sid, identity);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<Page<Entity>> FactorService::listEntities(const std::string& account_sid,
                                                 const std::string& service_sid, PageCursor cursor,
                                                 int page_size) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  return store_.listEntities(service_sid, cursor, page_size);
}

Status FactorService::deleteEntity(const std::string& account_sid, const std::string& service_sid,
                                   const std::string& identity) {
  auto entity = fetchEntity(account_sid, service_sid, identity);
  if (!entity) return fail(entity.error());
  std::vector<WebhookEvent> events;
  PageCursor cursor;
  for (;;) {
    auto page = store_.listFactors(service_sid, identity, cursor, 1000);
    if (!page) return fail(page.error());
    for (const auto& f : page->items) events.push_back(factorEvent("factor.deleted", f));
    if (!page->has_next || page->items.empty()) break;
    cursor = PageCursor{PageCursor::Direction::kAfter, page->last_seq};
  }
  if (auto st = store_.deleteEntity(service_sid, identity, events); !st) return st;
  if (!events.empty()) notify();
  return {};
}

// ---- factors --------------------------------------------------------------------------------

Result<NewFactor> FactorService::createFactor(const std::string& account_sid,
                                              const std::string& service_sid,
                                              const std::string& identity,
                                              const NewFactorParams& p) {
  auto svc = ownService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  if (!validIdentity(identity))
    return fail(Error::invalid("Identity", "8 to 64 letters, digits, '-' or '_'"));
  if (!p.friendly_name || p.friendly_name->empty()) return fail(Error::missing("FriendlyName"));
  if (auto st = checkLength(p.friendly_name, 1, 64, "FriendlyName"); !st) return fail(st.error());
  if (!p.factor_type) return fail(Error::missing("FactorType"));
  if (*p.factor_type == "passkeys")
    return fail(Error::invalid("FactorType", "passkeys factors are created through Passkeys"));
  if (!oneOf(*p.factor_type, {"totp", "push"}))
    return fail(Error::invalid("FactorType", "totp or push"));
  if (p.metadata)
    if (auto st = jsonStringMap(*p.metadata, 1024, "Metadata"); !st) return fail(st.error());

  const UnixTime now = clock_.now();
  const ServiceSettings& settings = svc->settings;
  NewFactor out;
  Factor& f = out.factor;
  f.sid = makeSid("YF", random_);
  f.account_sid = account_sid;
  f.service_sid = service_sid;
  f.identity = identity;
  f.friendly_name = *p.friendly_name;
  f.status = kUnverified;
  f.factor_type = *p.factor_type;
  f.metadata = p.metadata;
  f.date_created = f.date_updated = now;

  if (f.factor_type == "totp") {
    if (auto st = checkAlg(p.alg); !st) return fail(st.error());
    if (auto st = checkRange(p.time_step, 20, 60, "Config.TimeStep"); !st) return fail(st.error());
    if (auto st = checkRange(p.skew, 0, 2, "Config.Skew"); !st) return fail(st.error());
    if (auto st = checkRange(p.code_length, 3, 8, "Config.CodeLength"); !st)
      return fail(st.error());
    f.totp.alg = p.alg.value_or("sha1");
    f.totp.time_step = p.time_step.value_or(settings.totp_time_step);
    f.totp.skew = p.skew.value_or(settings.totp_skew);
    f.totp.code_length = p.code_length.value_or(settings.totp_code_length);
    std::string seed;
    if (p.binding_secret) {
      auto decoded = base32Decode(*p.binding_secret);
      if (!decoded || decoded->size() < 10 || decoded->size() > 128)
        return fail(Error::invalid("Binding.Secret", "Base32 of 10 to 128 bytes"));
      seed = std::move(*decoded);
    } else {
      seed = random_.bytes(20);
    }
    f.secret_sealed = crypto_.sealSecret(seed);
    out.secret = base32Encode(seed);
    std::string issuer = settings.totp_issuer && !settings.totp_issuer->empty()
                             ? *settings.totp_issuer
                             : settings.friendly_name;
    out.uri = otpauthUri(issuer, f.friendly_name, out.secret, f.totp);
  } else {
    if (!p.binding_alg) return fail(Error::missing("Binding.Alg"));
    if (*p.binding_alg != "ES256") return fail(Error::invalid("Binding.Alg", "ES256"));
    if (!p.binding_public_key) return fail(Error::missing("Binding.PublicKey"));
    if (!crypto_.isP256PublicKey(*p.binding_public_key))
      return fail(Error::invalid("Binding.PublicKey",
                                 "the Base64 of a DER SubjectPublicKeyInfo of a P-256 key"));
    if (!p.app_id) return fail(Error::missing("Config.AppId"));
    if (auto st = checkLength(p.app_id, 1, 100, "Config.AppId"); !st) return fail(st.error());
    if (!p.notification_platform) return fail(Error::missing("Config.NotificationPlatform"));
    if (auto st = checkPlatform(p.notification_platform); !st) return fail(st.error());
    if (*p.notification_platform != "none" && !p.notification_token)
      return fail(Error::missing("Config.NotificationToken"));
    if (auto st = checkLength(p.notification_token, 32, 255, "Config.NotificationToken"); !st)
      return fail(st.error());
    if (auto st = checkLength(p.sdk_version, 0, 64, "Config.SdkVersion"); !st)
      return fail(st.error());
    f.public_key = *p.binding_public_key;
    f.binding_alg = *p.binding_alg;
    f.push.app_id = *p.app_id;
    f.push.notification_platform = *p.notification_platform;
    f.push.notification_token = p.notification_token.value_or("");
    f.push.sdk_version = p.sdk_version.value_or("");
  }

  auto entity = store_.getOrCreateEntity(
      Entity{makeSid("YE", random_), account_sid, service_sid, identity, now, now});
  if (!entity) return fail(entity.error());
  f.entity_sid = entity->sid;
  if (auto st = store_.createFactor(f, {factorEvent("factor.created", f)}); !st)
    return fail(st.error());
  notify();
  return out;
}

Result<Factor> FactorService::fetchFactor(const std::string& account_sid,
                                          const std::string& service_sid,
                                          const std::string& identity, const std::string& sid) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  return findFactor(service_sid, identity, sid);
}

Result<Page<Factor>> FactorService::listFactors(const std::string& account_sid,
                                                const std::string& service_sid,
                                                const std::string& identity, PageCursor cursor,
                                                int page_size) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  return store_.listFactors(service_sid, identity, cursor, page_size);
}

Result<Factor> FactorService::updateFactor(const std::string& account_sid,
                                           const std::string& service_sid,
                                           const std::string& identity, const std::string& sid,
                                           const FactorUpdateParams& p) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  if (p.friendly_name && p.friendly_name->empty()) return fail(Error::invalid("FriendlyName"));
  for (auto st :
       {checkLength(p.friendly_name, 1, 64, "FriendlyName"), checkAlg(p.alg),
        checkRange(p.time_step, 20, 60, "Config.TimeStep"), checkRange(p.skew, 0, 2, "Config.Skew"),
        checkRange(p.code_length, 3, 8, "Config.CodeLength"),
        checkPlatform(p.notification_platform),
        checkLength(p.notification_token, 32, 255, "Config.NotificationToken"),
        checkLength(p.sdk_version, 0, 64, "Config.SdkVersion")})
    if (!st) return fail(st.error());
  if (p.auth_payload && p.auth_payload->empty()) return fail(Error::invalid("AuthPayload"));

  const UnixTime now = clock_.now();
  const int max_attempts = options_.max_factor_attempts;
  auto updated = store_.mutateFactor(
      service_sid, identity, sid, [&](const Factor& current) -> Result<FactorChange> {
        FactorChange change{current, {}};
        Factor& f = change.factor;
        if (p.friendly_name) f.friendly_name = *p.friendly_name;
        if (f.factor_type == "totp") {
          if (p.alg) f.totp.alg = *p.alg;
          if (p.time_step) f.totp.time_step = *p.time_step;
          if (p.skew) f.totp.skew = *p.skew;
          if (p.code_length) f.totp.code_length = *p.code_length;
        } else if (f.factor_type == "push") {
          if (p.notification_token) f.push.notification_token = *p.notification_token;
          if (p.sdk_version) f.push.sdk_version = *p.sdk_version;
          if (p.notification_platform) {
            if (*p.notification_platform != "none" && f.push.notification_token.empty())
              return fail(Error::missing("Config.NotificationToken"));
            f.push.notification_platform = *p.notification_platform;
          }
        }
        f.date_updated = now;
        if (!p.auth_payload || f.status != kUnverified) return change;
        if (f.failed_attempts >= max_attempts)
          return fail(
              Error::of(ErrorKind::kFactorMaxAttempts, "Max verification attempts reached"));
        bool verified = false;
        if (f.factor_type == "totp") {
          auto key = seed(f);
          if (!key) return fail(key.error());
          auto step = totpMatch(crypto_, f.totp, *key, *p.auth_payload, now, f.last_step);
          if (step) f.last_step = *step;
          verified = step.has_value();
        } else {
          // The device signs the factor's SID with its key (Base64 of a DER ECDSA signature).
          verified = crypto_.verifyEs256(f.public_key, f.sid, *p.auth_payload);
        }
        if (verified) {
          f.status = kVerified;
          f.failed_attempts = 0;
          change.events.push_back(factorEvent("factor.verified", f));
        } else {
          ++f.failed_attempts;
        }
        return change;
      });
  if (!updated) return fail(updated.error());
  if (p.auth_payload && updated->status == kUnverified && updated->failed_attempts >= max_attempts)
    return fail(Error::of(ErrorKind::kFactorMaxAttempts, "Max verification attempts reached"));
  if (updated->status == kVerified && p.auth_payload) notify();
  return updated;
}

Status FactorService::deleteFactor(const std::string& account_sid, const std::string& service_sid,
                                   const std::string& identity, const std::string& sid) {
  auto f = fetchFactor(account_sid, service_sid, identity, sid);
  if (!f) return fail(f.error());
  if (auto st =
          store_.deleteFactor(service_sid, identity, sid, {factorEvent("factor.deleted", *f)});
      !st)
    return st;
  notify();
  return {};
}

Result<int> FactorService::purgeUnverified() {
  return store_.purgeUnverifiedFactors(clock_.now() - options_.unverified_factor_ttl);
}

// ---- challenges -----------------------------------------------------------------------------

Result<ChallengeView> FactorService::createChallenge(const std::string& account_sid,
                                                     const std::string& service_sid,
                                                     const std::string& identity,
                                                     const ChallengeParams& p) {
  auto svc = ownService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  const bool include_date = svc->settings.push_include_date;
  if (!p.factor_sid) return fail(Error::missing("FactorSid"));
  if (!isSid(*p.factor_sid, "YF"))
    return fail(Error::invalid("FactorSid", "YF followed by 32 hex digits"));
  auto factor = findFactor(service_sid, identity, *p.factor_sid);
  if (!factor) return fail(factor.error());
  if (factor->status != kVerified)
    return fail(Error::of(ErrorKind::kFactorNotVerified, "The factor is not verified"));

  const UnixTime now = clock_.now();
  Challenge c;
  c.sid = makeSid("YC", random_);
  c.account_sid = account_sid;
  c.service_sid = service_sid;
  c.entity_sid = factor->entity_sid;
  c.identity = identity;
  c.factor_sid = factor->sid;
  c.factor_type = factor->factor_type;
  c.status = kPending;
  c.expiration_date = now + options_.default_challenge_ttl;
  if (p.expiration_date) {
    auto t = parseIso8601(*p.expiration_date);
    if (!t) return fail(Error::invalid("ExpirationDate", "must be yyyy-MM-ddTHH:mm:ssZ"));
    if (*t <= now || *t > now + options_.max_challenge_ttl)
      return fail(Error::invalid("ExpirationDate", "in the future, at most " +
                                                       std::to_string(options_.max_challenge_ttl) +
                                                       " seconds away"));
    c.expiration_date = *t;
  }
  if (factor->factor_type == "push" && !p.details_message)
    return fail(Error::missing("Details.Message"));
  if (auto st = checkLength(p.details_message, 0, 256, "Details.Message"); !st)
    return fail(st.error());
  c.details_message = p.details_message.value_or("");
  if (p.details_fields.size() > 20)
    return fail(Error::invalid("Details.Fields", "at most 20 fields"));
  for (const auto& text : p.details_fields) {
    auto j = json::parse(text, nullptr, false);
    auto label = j.is_object() ? j.find("label") : j.end();
    auto value = j.is_object() ? j.find("value") : j.end();
    if (!j.is_object() || label == j.end() || value == j.end() || !label->is_string() ||
        !value->is_string())
      return fail(Error::invalid("Details.Fields", "each a JSON object {\"label\", \"value\"}"));
    ChallengeField field{label->get<std::string>(), value->get<std::string>()};
    if (field.label.empty() || field.label.size() > 36 || field.value.size() > 128)
      return fail(Error::invalid("Details.Fields",
                                 "labels of 1 to 36 characters, values of at "
                                 "most 128"));
    c.details_fields.push_back(std::move(field));
  }
  if (p.hidden_details) {
    if (auto st = jsonStringMap(*p.hidden_details, 1024, "HiddenDetails"); !st)
      return fail(st.error());
    c.hidden_details = p.hidden_details;
  }
  if (p.auth_payload) {
    if (factor->factor_type != "totp")
      return fail(Error::invalid("AuthPayload", "only for totp factors at creation"));
    if (p.auth_payload->size() < 3 || p.auth_payload->size() > 8)
      return fail(Error::invalid("AuthPayload", "3 to 8 characters"));
  }
  c.date_created = c.date_updated = now;

  std::optional<WebhookDelivery> push;
  if (factor->factor_type == "push" && factor->push.notification_platform != "none")
    push = pushDelivery(
        c, *factor,
        static_cast<int>(std::min<UnixTime>(300, std::max<UnixTime>(0, c.expiration_date - now))),
        now);
  if (auto st = store_.createChallenge(c, {}, push); !st) return fail(st.error());
  if (push) notify();
  if (p.auth_payload) {
    // Checked in a second write, which also records the accepted step on the factor.
    ChallengeUpdateParams check;
    check.auth_payload = p.auth_payload;
    return updateChallenge(account_sid, service_sid, identity, c.sid, check);
  }
  return ChallengeView{std::move(c), include_date};
}

Result<ChallengeView> FactorService::fetchChallenge(const std::string& account_sid,
                                                    const std::string& service_sid,
                                                    const std::string& identity,
                                                    const std::string& sid) {
  auto svc = ownService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  const bool include_date = svc->settings.push_include_date;
  auto c = findChallenge(service_sid, identity, sid);
  if (!c) return fail(c.error());
  const UnixTime now = clock_.now();
  if (!expiredAt(*c, now)) return ChallengeView{std::move(*c), include_date};
  auto stored = store_.mutateChallenge(
      service_sid, identity, sid,
      [&](const Challenge& current, const Factor& f) -> Result<ChallengeChange> {
        ChallengeChange change{current, f, {}};
        if (expiredAt(current, now)) {
          change.challenge.status = kExpired;
          change.challenge.date_updated = now;
        }
        return change;
      });
  if (!stored) return fail(stored.error());
  return ChallengeView{std::move(*stored), include_date};
}

Result<ChallengeList> FactorService::listChallenges(const std::string& account_sid,
                                                    const std::string& service_sid,
                                                    const std::string& identity,
                                                    const ChallengeListFilter& filter,
                                                    PageCursor cursor, int page_size) {
  auto svc = ownService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  ChallengeFilter query;
  if (filter.factor_sid) {
    if (!isSid(*filter.factor_sid, "YF"))
      return fail(Error::invalid("FactorSid", "YF followed by 32 hex digits"));
    query.factor_sid = *filter.factor_sid;
  }
  if (filter.status && !oneOf(*filter.status, {kPending, kExpired, kApproved, kDenied}))
    return fail(Error::invalid("Status", "pending, expired, approved or denied"));
  if (filter.order && !oneOf(*filter.order, {"asc", "desc"}))
    return fail(Error::invalid("Order", "asc or desc"));
  query.descending = filter.order == "desc";
  // A pending challenge past its expiration is expired, stored so or not: "expired" reads every
  // status and keeps the expired ones, "pending" drops those.
  if (filter.status && *filter.status != kExpired) query.status = *filter.status;
  const UnixTime now = clock_.now();

  ChallengeList out;
  out.include_date = svc->settings.push_include_date;
  Page<Challenge>& page = out.page;
  const bool back = cursor.direction == PageCursor::Direction::kBefore;
  bool first = true;
  for (;;) {
    auto raw = store_.listChallenges(service_sid, identity, query, cursor, page_size);
    if (!raw) return fail(raw.error());
    std::vector<Challenge> kept;
    for (auto& c : raw->items) {
      if (expiredAt(c, now)) c.status = kExpired;
      if (!filter.status || c.status == *filter.status) kept.push_back(std::move(c));
    }
    if (first) {
      page = Page<Challenge>{{}, raw->first_seq, raw->last_seq, raw->has_next, raw->has_previous};
      first = false;
    }
    if (back) {
      page.first_seq = raw->first_seq;
      page.has_previous = raw->has_previous;
      kept.insert(kept.end(), std::make_move_iterator(page.items.begin()),
                  std::make_move_iterator(page.items.end()));
      page.items = std::move(kept);
    } else {
      page.last_seq = raw->last_seq;
      page.has_next = raw->has_next;
      for (auto& c : kept) page.items.push_back(std::move(c));
    }
    // A page the filter emptied would end the SDK's paging: read on until something is kept.
    bool more = back ? raw->has_previous : raw->has_next;
    if (!page.items.empty() || !more || raw->items.empty()) break;
    cursor = back ? PageCursor{PageCursor::Direction::kBefore, raw->first_seq}
                  : PageCursor{PageCursor::Direction::kAfter, raw->last_seq};
  }
  return out;
}

Result<ChallengeView> FactorService::updateChallenge(const std::string& account_sid,
                                                     const std::string& service_sid,
                                                     const std::string& identity,
                                                     const std::string& sid,
                                                     const ChallengeUpdateParams& p) {
  auto svc = ownService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  const bool include_date = svc->settings.push_include_date;
  if (p.metadata)
    if (auto st = jsonStringMap(*p.metadata, 1024, "Metadata"); !st) return fail(st.error());
  if (p.auth_payload && (p.auth_payload->empty() || p.auth_payload->size() > 5456))
    return fail(Error::invalid("AuthPayload", "1 to 5456 characters"));
  auto current = findChallenge(service_sid, identity, sid);
  if (!current) return fail(current.error());
  const UnixTime now = clock_.now();
  // Answered or expired (and stored so): nothing to write.
  if (current->status != kPending) return ChallengeView{std::move(*current), include_date};

  const int max_attempts = options_.max_challenge_attempts;
  auto updated = store_.mutateChallenge(
      service_sid, identity, sid,
      [&](const Challenge& cur, const Factor& factor) -> Result<ChallengeChange> {
        ChallengeChange change{cur, factor, {}};
        Challenge& c = change.challenge;
        if (c.status != kPending) return change;
        c.date_updated = now;
        if (expiredAt(c, now)) {
          c.status = kExpired;
          return change;
        }
        if (p.metadata) c.metadata = p.metadata;
        if (!p.auth_payload) return change;
        if (c.factor_type == "totp") {
          if (c.failed_attempts >= max_attempts)
            return fail(
                Error::of(ErrorKind::kChallengeMaxAttempts, "Max challenge attempts reached"));
          auto key = seed(factor);
          if (!key) return fail(key.error());
          auto step = totpMatch(crypto_, factor.totp, *key, *p.auth_payload, now, factor.last_step);
          if (!step) {
            ++c.failed_attempts;
            return change;
          }
          change.factor.last_step = *step;
          c.status = kApproved;
        } else {
          auto payload = crypto_.verifyJws(factor.public_key, *p.auth_payload);
          auto failed = [] {
            return fail(
                Error::of(ErrorKind::kChallengeVerifyFailed, "Challenge verification failed"));
          };
          if (!payload) return failed();
          auto signed_values = json::parse(*payload, nullptr, false);
          if (!signed_values.is_object()) return failed();
          // The values this server renders for the fields it asks devices to sign.
          auto expected = json::parse(challengeSignedValues(c, include_date).dump());
          for (const auto& field : challengeSignatureFields()) {
            auto it = signed_values.find(field);
            if (it == signed_values.end() || *it != expected[field]) return failed();
          }
          auto status = signed_values.find("status");
          if (status == signed_values.end() || !status->is_string() ||
              !oneOf(status->get<std::string>(), {kApproved, kDenied}))
            return failed();
          c.status = status->get<std::string>();
        }
        c.date_responded = now;
        change.events.push_back(challengeEvent("challenge." + c.status, c, factor, include_date));
        return change;
      });
  if (!updated) return fail(updated.error());
  if (updated->factor_type == "totp" && p.auth_payload && updated->status == kPending &&
      updated->failed_attempts >= max_attempts)
    return fail(Error::of(ErrorKind::kChallengeMaxAttempts, "Max challenge attempts reached"));
  if (updated->status == kApproved || updated->status == kDenied) notify();
  return ChallengeView{std::move(*updated), include_date};
}

Result<Notification> FactorService::createNotification(const std::string& account_sid,
                                                       const std::string& service_sid,
                                                       const std::string& identity,
                                                       const std::string& challenge_sid,
                                                       std::optional<int> ttl) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  if (auto st = checkRange(ttl, 0, 300, "Ttl"); !st) return fail(st.error());
  auto c = findChallenge(service_sid, identity, challenge_sid);
  if (!c) return fail(c.error());
  if (c->factor_type != "push")
    return fail(Error::invalid("ChallengeSid", "notifications are for push challenges"));
  const UnixTime now = clock_.now();
  if (c->status != kPending || expiredAt(*c, now))
    return fail(Error::invalid("ChallengeSid", "the challenge is no longer pending"));
  auto f = findFactor(service_sid, identity, c->factor_sid);
  if (!f) return fail(f.error());
  if (f->push.notification_platform == "none")
    return fail(Error::invalid("ChallengeSid", "the factor's notification platform is none"));
  Notification n;
  n.sid = makeSid("NT", random_);
  n.account_sid = account_sid;
  n.service_sid = service_sid;
  n.entity_sid = c->entity_sid;
  n.identity = identity;
  n.challenge_sid = c->sid;
  n.ttl = ttl.value_or(300);
  n.date_created = now;
  if (auto st = store_.enqueueDelivery(pushDelivery(*c, *f, n.ttl, now)); !st)
    return fail(st.error());
  notify();
  return n;
}

// ---- access tokens --------------------------------------------------------------------------

Result<AccessToken> FactorService::createAccessToken(const std::string& account_sid,
                                                     const std::string& service_sid,
                                                     const AccessTokenParams& p) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  if (!p.identity) return fail(Error::missing("Identity"));
  if (!validIdentity(*p.identity))
    return fail(Error::invalid("Identity", "8 to 64 letters, digits, '-' or '_'"));
  if (!p.factor_type) return fail(Error::missing("FactorType"));
  if (*p.factor_type != "push") return fail(Error::invalid("FactorType", "push"));
  if (auto st = checkLength(p.factor_friendly_name, 0, 64, "FactorFriendlyName"); !st)
    return fail(st.error());
  if (auto st = checkRange(p.ttl, 60, 300, "Ttl"); !st) return fail(st.error());
  const UnixTime now = clock_.now();
  AccessToken t;
  t.sid = makeSid("YK", random_);
  t.account_sid = account_sid;
  t.service_sid = service_sid;
  t.entity_identity = *p.identity;
  t.factor_type = "push";
  if (p.factor_friendly_name && !p.factor_friendly_name->empty())
    t.factor_friendly_name = p.factor_friendly_name;
  t.ttl = p.ttl.value_or(60);
  t.date_created = now;
  ojson claims;
  claims["iss"] = account_sid;
  claims["sub"] = service_sid;
  claims["identity"] = t.entity_identity;
  claims["factor_type"] = t.factor_type;
  claims["factor_friendly_name"] = t.factor_friendly_name.value_or("");
  claims["iat"] = now;
  claims["exp"] = now + t.ttl;
  claims["jti"] = t.sid;
  t.token = crypto_.signJwt(claims.dump());
  if (auto st = store_.createAccessToken(t); !st) return fail(st.error());
  return t;
}

Result<AccessToken> FactorService::fetchAccessToken(const std::string& account_sid,
                                                    const std::string& service_sid,
                                                    const std::string& sid) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  auto found = store_.getAccessToken(service_sid, sid);
  if (!found) return fail(found.error());
  if (!*found || (*found)->account_sid != account_sid) return fail(Error::notFound());
  return std::move(**found);
}

namespace {
// Base64url without padding (JWT segments) to bytes; nullopt on anything else.
std::optional<std::string> base64UrlDecode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v = -1;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    if (ch == '-') v = 62;
    if (ch == '_') v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}
}  // namespace

// After enrolment the Verify Push device SDKs sign their own short-lived JWT with the factor's
// key (ES256; header cty "twilio-pba;v=1"; claims sub = account SID, exp, nbf, and
// grants.verify_push = {factor_sid, entity_sid (the identity), service_sid}).
Result<DeviceClaims> FactorService::authenticateFactorJwt(std::string_view token) const {
  auto denied = [] { return fail(Error::of(ErrorKind::kUnauthenticated)); };
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos) return denied();
  auto payload = base64UrlDecode(token.substr(first + 1, second - first - 1));
  if (!payload) return denied();
  auto j = json::parse(*payload, nullptr, false);
  if (!j.is_object()) return denied();
  auto grants = j.find("grants");
  if (grants == j.end() || !grants->is_object()) return denied();
  auto push = grants->find("verify_push");
  if (push == grants->end() || !push->is_object()) return denied();
  auto text = [](const json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string account = text(j, "sub"), factor_sid = text(*push, "factor_sid"),
                    identity = text(*push, "entity_sid"), service = text(*push, "service_sid");
  if (!isSid(factor_sid, "YF") || !isSid(service, "VA") || identity.empty()) return denied();
  auto factor = store_.getFactor(service, identity, factor_sid);
  if (!factor) return fail(factor.error());
  if (!*factor || (*factor)->account_sid != account || (*factor)->factor_type != "push")
    return denied();
  if (!crypto_.verifyJws((*factor)->public_key, token)) return denied();
  const UnixTime now = clock_.now();
  auto exp = j.find("exp");
  if (exp == j.end() || !exp->is_number() || exp->get<double>() <= static_cast<double>(now))
    return denied();
  // A minute of clock skew between the phone and the server.
  if (auto nbf = j.find("nbf");
      nbf != j.end() && nbf->is_number() && nbf->get<double>() > static_cast<double>(now + 60))
    return denied();
  return DeviceClaims{account, service, identity, "push", (*factor)->friendly_name};
}

Result<DeviceClaims> FactorService::authenticateDevice(std::string_view token) const {
  auto denied = [] { return fail(Error::of(ErrorKind::kUnauthenticated)); };
  auto claims = crypto_.verifyJwt(token, clock_.now());
  if (!claims) return authenticateFactorJwt(token);
  auto j = json::parse(*claims, nullptr, false);
  if (!j.is_object()) return denied();
  auto text = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  DeviceClaims d{text("iss"), text("sub"), text("identity"), text("factor_type"),
                 text("factor_friendly_name")};
  if (!isSid(d.account_sid, "AC") || !isSid(d.service_sid, "VA") || d.identity.empty())
    return denied();
  return d;
}

// ---- webhooks -------------------------------------------------------------------------------

namespace {
// EventTypes as sent (repeated), each value also split on commas; duplicates dropped.
std::vector<std::string> normalizedEventTypes(const std::vector<std::string>& given) {
  std::vector<std::string> out;
  for (const auto& value : given) {
    std::string_view rest = value;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty() && std::find(out.begin(), out.end(), item) == out.end())
        out.emplace_back(item);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return out;
}

Status applyWebhookParams(const WebhookParams& p, Webhook& w) {
  if (p.friendly_name) {
    if (auto st = checkLength(p.friendly_name, 1, 64, "FriendlyName"); !st) return st;
    w.friendly_name = *p.friendly_name;
  }
  if (p.event_types) {
    auto types = normalizedEventTypes(*p.event_types);
    if (auto st = checkEventTypes(types); !st) return st;
    w.event_types = std::move(types);
  }
  if (p.webhook_url) {
    if (!validWebhookUrl(*p.webhook_url))
      return fail(Error::invalid("WebhookUrl", "an http:// or https:// URL"));
    w.webhook_url = *p.webhook_url;
  }
  if (p.status) {
    if (!oneOf(*p.status, {"enabled", "disabled"}))
      return fail(Error::invalid("Status", "enabled or disabled"));
    w.status = *p.status;
  }
  if (p.version) {
    if (!oneOf(*p.version, {"v1", "v2"})) return fail(Error::invalid("Version", "v1 or v2"));
    w.version = *p.version;
  }
  return {};
}
}  // namespace

Result<Webhook> FactorService::createWebhook(const std::string& account_sid,
                                             const std::string& service_sid,
                                             const WebhookParams& p) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  if (!p.friendly_name) return fail(Error::missing("FriendlyName"));
  if (!p.event_types || p.event_types->empty()) return fail(Error::missing("EventTypes"));
  if (!p.webhook_url) return fail(Error::missing("WebhookUrl"));
  const UnixTime now = clock_.now();
  Webhook w;
  w.sid = makeSid("YW", random_);
  w.account_sid = account_sid;
  w.service_sid = service_sid;
  w.date_created = w.date_updated = now;
  if (auto st = applyWebhookParams(p, w); !st) return fail(st.error());
  if (auto st = store_.createWebhook(w); !st) return fail(st.error());
  return w;
}

Result<Webhook> FactorService::fetchWebhook(const std::string& account_sid,
                                            const std::string& service_sid,
                                            const std::string& sid) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  auto found = store_.getWebhook(service_sid, sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<Page<Webhook>> FactorService::listWebhooks(const std::string& account_sid,
                                                  const std::string& service_sid, PageCursor cursor,
                                                  int page_size) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  return store_.listWebhooks(service_sid, cursor, page_size);
}

Result<Webhook> FactorService::updateWebhook(const std::string& account_sid,
                                             const std::string& service_sid, const std::string& sid,
                                             const WebhookParams& p) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  // Validated before the write, so that a bad value answers 400 whether or not the webhook exists.
  Webhook probe;
  if (auto st = applyWebhookParams(p, probe); !st) return fail(st.error());
  const UnixTime now = clock_.now();
  return store_.updateWebhook(service_sid, sid, [&](Webhook& w) -> Status {
    if (auto st = applyWebhookParams(p, w); !st) return st;
    w.date_updated = now;
    return {};
  });
}

Status FactorService::deleteWebhook(const std::string& account_sid, const std::string& service_sid,
                                    const std::string& sid) {
  if (auto svc = ownService(account_sid, service_sid); !svc) return fail(svc.error());
  return store_.deleteWebhook(service_sid, sid);
}

}  // namespace verifyd
