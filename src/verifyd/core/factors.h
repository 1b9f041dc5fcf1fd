#pragma once
// Verify's factors: Entities, TOTP and push Factors, Challenges and their push Notifications,
// Access Tokens (how a device enrols a push factor) and Webhooks (who hears about it). Every use
// case checks that the service belongs to the account, validates its parameters, and writes
// through FactorStore, whose writes carry the webhook events they raise.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/factor_model.h"
#include "verifyd/core/ports/delivery.h"
#include "verifyd/core/ports/factor_crypto.h"
#include "verifyd/core/ports/factor_store.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

struct FactorOptions {
  int max_factor_attempts = 5;        // wrong codes while verifying a factor; the 5th: 60310
  int max_challenge_attempts = 5;     // wrong codes on a challenge; the 5th: 60308
  int unverified_factor_ttl = 86400;  // seconds before purgeUnverified() deletes one
  int default_challenge_ttl = 300;    // ExpirationDate when absent
  int max_challenge_ttl = 3600;       // ExpirationDate at most this far ahead
};

// CreateNewFactor's parameters, as sent (absent = nullopt). Ranges are checked here.
struct NewFactorParams {
  std::optional<std::string> friendly_name;
  std::optional<std::string> factor_type;
  std::optional<std::string> binding_alg;
  std::optional<std::string> binding_public_key;
  std::optional<std::string> binding_secret;
  std::optional<std::string> app_id;
  std::optional<std::string> notification_platform;
  std::optional<std::string> notification_token;
  std::optional<std::string> sdk_version;
  std::optional<int> time_step, skew, code_length;
  std::optional<std::string> alg;
  std::optional<std::string> metadata;  // JSON object text
};

struct FactorUpdateParams {
  std::optional<std::string> auth_payload;
  std::optional<std::string> friendly_name;
  std::optional<std::string> notification_token;
  std::optional<std::string> sdk_version;
  std::optional<std::string> notification_platform;
  std::optional<int> time_step, skew, code_length;
  std::optional<std::string> alg;
};

// A factor as created: the only time its binding leaves the server.
struct NewFactor {
  Factor factor;
  std::string secret;  // totp: the seed in Base32
  std::string uri;     // totp: otpauth:// URI for authenticator apps
};

struct ChallengeParams {
  std::optional<std::string> factor_sid;
  std::optional<std::string> expiration_date;  // ISO 8601
  std::optional<std::string> details_message;
  std::vector<std::string> details_fields;    // each a JSON object {label, value}
  std::optional<std::string> hidden_details;  // JSON object text
  std::optional<std::string> auth_payload;    // totp: a code, checked at once
};

struct ChallengeUpdateParams {
  std::optional<std::string> auth_payload;  // totp code, or push compact JWS
  std::optional<std::string> metadata;      // JSON object text
};

// A challenge and how the API renders it: `details.date` only with the service's
// Push.IncludeDate (deprecated by Twilio, off by default).
struct ChallengeView {
  Challenge challenge;
  bool include_date = false;
};
struct ChallengeList {
  Page<Challenge> page;
  bool include_date = false;
};

struct ChallengeListFilter {
  std::optional<std::string> factor_sid;
  std::optional<std::string> status;  // pending | expired | approved | denied
  std::optional<std::string> order;   // asc | desc
};

// A re-sent push notification of a challenge (NT…): not stored, only queued.
struct Notification {
  std::string sid;
  std::string account_sid;
  std::string service_sid;
  std::string entity_sid;
  std::string identity;
  std::string challenge_sid;
  std::string priority = "high";
  int ttl = 300;
  UnixTime date_created = 0;
};

struct AccessTokenParams {
  std::optional<std::string> identity;
  std::optional<std::string> factor_type;
  std::optional<std::string> factor_friendly_name;
  std::optional<int> ttl;
};

// What an access token lets a device do: act for one identity of one service.
struct DeviceClaims {
  std::string account_sid;
  std::string service_sid;
  std::string identity;
  std::string factor_type;
  std::string factor_friendly_name;
};

struct WebhookParams {
  std::optional<std::string> friendly_name;
  std::optional<std::vector<std::string>> event_types;
  std::optional<std::string> webhook_url;
  std::optional<std::string> status;   // enabled | disabled
  std::optional<std::string> version;  // v2 | v1
};

// The top-level challenge fields a device signs to answer a push challenge, in the order of the
// `Twilio-Verify-Signature-Fields` header (comma-separated, no spaces). None of them changes
// while the challenge is pending, so a fetch and the answer see the same values.
const std::vector<std::string>& challengeSignatureFields();
std::string challengeSignatureFieldsHeader();
// `details`, `hidden_details` and `metadata` exactly as the API renders them.
nlohmann::ordered_json challengeDetailsJson(const Challenge& c, bool include_date);
nlohmann::ordered_json jsonObjectOrNull(const std::optional<std::string>& text);
// The values of challengeSignatureFields() as a fetch of the challenge returns them.
nlohmann::ordered_json challengeSignedValues(const Challenge& c, bool include_date);

class FactorService {
 public:
  FactorService(ServiceStore& services, FactorStore& store, const FactorCrypto& crypto,
                Clock& clock, Random& random, FactorOptions options = {},
                Delivery* delivery = nullptr);

  // Every method first checks that the service belongs to the account (kNotFound otherwise).

  // Entities. An identity is 8-64 letters, digits, '-' or '_'.
  Result<Entity> createEntity(const std::string& account_sid, const std::string& service_sid,
                              const std::optional<std::string>& identity);
  Result<Entity> fetchEntity(const std::string& account_sid, const std::string& service_sid,
                             const std::string& identity);
  Result<Page<Entity>> listEntities(const std::string& account_sid, const std::string& service_sid,
                                    PageCursor cursor, int page_size);
  // Deletes the entity with its factors (a factor.deleted event each) and challenges.
  Status deleteEntity(const std::string& account_sid, const std::string& service_sid,
                      const std::string& identity);

  // Factors. Creation makes the entity when absent; a totp seed is generated unless given.
  Result<NewFactor> createFactor(const std::string& account_sid, const std::string& service_sid,
                                 const std::string& identity, const NewFactorParams& p);
  Result<Factor> fetchFactor(const std::string& account_sid, const std::string& service_sid,
                             const std::string& identity, const std::string& sid);
  Result<Page<Factor>> listFactors(const std::string& account_sid, const std::string& service_sid,
                                   const std::string& identity, PageCursor cursor, int page_size);
  // With AuthPayload, verifies an unverified factor: a wrong totp code (or push signature)
  // answers the factor still unverified; the last allowed wrong one kFactorMaxAttempts.
  Result<Factor> updateFactor(const std::string& account_sid, const std::string& service_sid,
                              const std::string& identity, const std::string& sid,
                              const FactorUpdateParams& p);
  Status deleteFactor(const std::string& account_sid, const std::string& service_sid,
                      const std::string& identity, const std::string& sid);
  // Deletes unverified factors older than options.unverified_factor_ttl; returns how many.
  Result<int> purgeUnverified();

  // Challenges. kFactorNotVerified on an unverified factor. A push challenge queues its first
  // notification; a totp one with AuthPayload is checked at once (approved, or pending after a
  // wrong code).
  Result<ChallengeView> createChallenge(const std::string& account_sid,
                                        const std::string& service_sid, const std::string& identity,
                                        const ChallengeParams& p);
  // A pending challenge past its expiration_date reads as expired (and is stored so).
  Result<ChallengeView> fetchChallenge(const std::string& account_sid,
                                       const std::string& service_sid, const std::string& identity,
                                       const std::string& sid);
  Result<ChallengeList> listChallenges(const std::string& account_sid,
                                       const std::string& service_sid, const std::string& identity,
                                       const ChallengeListFilter& filter, PageCursor cursor,
                                       int page_size);
  // Answers a pending challenge: a totp code, or for push a compact JWS (ES256, the factor's
  // key) whose payload holds challengeSignatureFields() with their values and "status"
  // approved or denied (kChallengeVerifyFailed otherwise). Past expiration_date the challenge
  // becomes expired and is returned so; an answered one is returned unchanged.
  Result<ChallengeView> updateChallenge(const std::string& account_sid,
                                        const std::string& service_sid, const std::string& identity,
                                        const std::string& sid, const ChallengeUpdateParams& p);
  // Re-sends the push notification of a pending push challenge; `ttl` 0-300 (default 300).
  Result<Notification> createNotification(const std::string& account_sid,
                                          const std::string& service_sid,
                                          const std::string& identity,
                                          const std::string& challenge_sid, std::optional<int> ttl);

  // Access tokens: a JWT (FactorCrypto::signJwt) that lets a device enrol and use a push factor
  // of one identity. Ttl 60-300 seconds (default 60).
  Result<AccessToken> createAccessToken(const std::string& account_sid,
                                        const std::string& service_sid, const AccessTokenParams& p);
  Result<AccessToken> fetchAccessToken(const std::string& account_sid,
                                       const std::string& service_sid, const std::string& sid);
  // The claims of a valid, unexpired access token; kUnauthenticated otherwise.
  // A device's HTTP Basic password (user `token`): an access token from AccessTokens, or the JWT
  // an enrolled device signs with its factor's key. kUnauthenticated for anything else.
  Result<DeviceClaims> authenticateDevice(std::string_view token) const;
  Result<DeviceClaims> authenticateFactorJwt(std::string_view token) const;

  // Webhooks.
  Result<Webhook> createWebhook(const std::string& account_sid, const std::string& service_sid,
                                const WebhookParams& p);
  Result<Webhook> fetchWebhook(const std::string& account_sid, const std::string& service_sid,
                               const std::string& sid);
  Result<Page<Webhook>> listWebhooks(const std::string& account_sid, const std::string& service_sid,
                                     PageCursor cursor, int page_size);
  Result<Webhook> updateWebhook(const std::string& account_sid, const std::string& service_sid,
                                const std::string& sid, const WebhookParams& p);
  Status deleteWebhook(const std::string& account_sid, const std::string& service_sid,
                       const std::string& sid);

 private:
  Result<Service> ownService(const std::string& account_sid, const std::string& service_sid);
  Result<Factor> findFactor(const std::string& service_sid, const std::string& identity,
                            const std::string& sid);
  Result<Challenge> findChallenge(const std::string& service_sid, const std::string& identity,
                                  const std::string& sid);
  // The sealed totp seed, opened.
  Result<std::string> seed(const Factor& f) const;
  std::string uuid();
  WebhookEvent factorEvent(const std::string& type, const Factor& f);
  WebhookEvent challengeEvent(const std::string& type, const Challenge& c, const Factor& f,
                              bool include_date);
  // The push notification of a challenge, for the delivery outbox.
  WebhookDelivery pushDelivery(const Challenge& c, const Factor& f, int ttl, UnixTime now);
  void notify();

  ServiceStore& services_;
  FactorStore& store_;
  const FactorCrypto& crypto_;
  Clock& clock_;
  Random& random_;
  FactorOptions options_;
  Delivery* delivery_;
};

}  // namespace verifyd
