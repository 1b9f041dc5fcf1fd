#include "verifyd/api/router.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include <array>
#include <future>
#include <limits>
#include <optional>
#include <set>

#include "verifyd/api/twilio/base64.h"
#include "verifyd/api/twilio/encode.h"
#include "verifyd/api/twilio/errors.h"
#include "verifyd/api/twilio/form.h"
#include "verifyd/api/twilio/paging.h"
#include "verifyd/common/sid.h"
#include "verifyd/common/time_format.h"
#include "verifyd/delivery/templates.h"

namespace verifyd {

using twilio::ojson;
using twilio::Params;

struct Router::Call {
  const ApiRequest& req;
  std::string path;      // decoded later per segment
  std::string resource;  // path without `/v2`, for 404 messages
  std::vector<std::string> segments;
  Params query;
  Params form;
  std::string account_sid;
  // Set when a device authenticated with an access token (user `token`): what it may act for.
  std::optional<DeviceClaims> device;
};

namespace {

ApiResponse json(int status, const ojson& body) { return ApiResponse{status, body.dump(), {}}; }

ApiResponse methodNotAllowed(std::string allow) {
  ApiResponse r = twilio::renderError(Error::of(ErrorKind::kMethodNotAllowed), "");
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

// The user and password of HTTP Basic credentials.
std::optional<std::pair<std::string, std::string>> basicCredentials(std::string_view header) {
  // The scheme name is case-insensitive (RFC 9110 §11.1); spaces may follow it.
  if (header.size() < 6 || strncasecmp(header.data(), "basic ", 6) != 0) return std::nullopt;
  std::string_view token = header.substr(6);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  auto decoded = twilio::base64Decode(token);
  if (!decoded) return std::nullopt;
  auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::pair{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

Result<std::string> authenticate(Accounts& accounts, std::string_view header) {
  auto unauthenticated = Error::of(ErrorKind::kUnauthenticated);
  auto credentials = basicCredentials(header);
  if (!credentials) return fail(unauthenticated);
  const auto& [user, password] = *credentials;
  if (!isSid(user, "AC") && !isSid(user, "SK")) return fail(unauthenticated);
  return accounts.authenticate(user, password);
}

// 20403: authenticated, but not for this (a device's access token outside its entity).
ApiResponse forbidden() {
  twilio::ojson j;
  j["code"] = 20403;
  j["message"] = "Forbidden: an access token acts only on its own entity's factors and challenges";
  j["more_info"] = "https://www.twilio.com/docs/errors/20403";
  j["status"] = 403;
  return ApiResponse{403, j.dump(), {}};
}

// Optional string parameters: present and empty clears the value.
void setString(const Params& p, const char* key, std::optional<std::string>& field) {
  if (auto v = p.get(key)) field = v->empty() ? std::nullopt : std::optional<std::string>(*v);
}

Status setSid(const Params& p, const char* key, const char* prefix,
              std::optional<std::string>& field) {
  auto v = p.get(key);
  if (!v) return {};
  if (v->empty()) {
    field.reset();
    return {};
  }
  if (!isSid(*v, prefix))
    return fail(
        Error::invalid(key, std::string("must be ") + prefix + " followed by 32 hex digits"));
  field = *v;
  return {};
}

Status setEnum(const Params& p, const char* key, std::initializer_list<const char*> allowed,
               std::optional<std::string>& field) {
  auto v = p.get(key);
  if (!v) return {};
  for (const char* a : allowed)
    if (*v == a) {
      field = *v;
      return {};
    }
  return fail(Error::invalid(key));
}

#define VERIFYD_TRY(expr)                    \
  do {                                       \
    if (auto st_ = (expr); !st_) return st_; \
  } while (0)

Status setBool(const Params& p, const char* key, bool& field) {
  auto v = p.getBool(key);
  if (!v) return fail(v.error());
  if (*v) field = **v;
  return {};
}

Status setInt(const Params& p, const char* key, int lo, int hi, int& field) {
  auto v = p.getInt(key, lo, hi);
  if (!v) return fail(v.error());
  if (*v) field = **v;
  return {};
}

// Every service parameter the spec defines, validated and applied to `s`.
Status applyServiceParams(const Params& p, ServiceSettings& s) {
  if (auto name = p.get("FriendlyName")) {
    if (name->empty() || name->size() > 30)
      return fail(Error::invalid("FriendlyName", "1 to 30 characters"));
    s.friendly_name = *name;
  }
  VERIFYD_TRY(setInt(p, "CodeLength", 4, 10, s.code_length));
  VERIFYD_TRY(setBool(p, "LookupEnabled", s.lookup_enabled));
  VERIFYD_TRY(setBool(p, "SkipSmsToLandlines", s.skip_sms_to_landlines));
  VERIFYD_TRY(setBool(p, "DtmfInputRequired", s.dtmf_input_required));
  setString(p, "TtsName", s.tts_name);
  VERIFYD_TRY(setBool(p, "Psd2Enabled", s.psd2_enabled));
  VERIFYD_TRY(setBool(p, "DoNotShareWarningEnabled", s.do_not_share_warning_enabled));
  VERIFYD_TRY(setBool(p, "CustomCodeEnabled", s.custom_code_enabled));
  VERIFYD_TRY(setBool(p, "Push.IncludeDate", s.push_include_date));
  VERIFYD_TRY(setSid(p, "Push.ApnCredentialSid", "CR", s.push_apn_credential_sid));
  VERIFYD_TRY(setSid(p, "Push.FcmCredentialSid", "CR", s.push_fcm_credential_sid));
  setString(p, "Totp.Issuer", s.totp_issuer);
  VERIFYD_TRY(setInt(p, "Totp.TimeStep", 20, 60, s.totp_time_step));
  VERIFYD_TRY(setInt(p, "Totp.CodeLength", 3, 8, s.totp_code_length));
  VERIFYD_TRY(setInt(p, "Totp.Skew", 0, 2, s.totp_skew));
  VERIFYD_TRY(setSid(p, "DefaultTemplateSid", "HJ", s.default_template_sid));
  VERIFYD_TRY(setSid(p, "Whatsapp.MsgServiceSid", "MG", s.whatsapp_msg_service_sid));
  setString(p, "Whatsapp.From", s.whatsapp_from);
  setString(p, "Passkeys.RelyingParty.Id", s.passkeys_rp_id);
  setString(p, "Passkeys.RelyingParty.Name", s.passkeys_rp_name);
  if (auto origins = p.get("Passkeys.RelyingParty.Origins")) {
    std::vector<std::string> list;
    std::string_view rest = *origins;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) list.emplace_back(item);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    s.passkeys_rp_origins = list.empty() ? std::nullopt : std::optional(list);
  }
  VERIFYD_TRY(setEnum(p, "Passkeys.AuthenticatorAttachment",
                      {"", "platform", "cross-platform", "any"},
                      s.passkeys_authenticator_attachment));
  VERIFYD_TRY(setEnum(p, "Passkeys.DiscoverableCredentials",
                      {"", "required", "preferred", "discouraged"},
                      s.passkeys_discoverable_credentials));
  VERIFYD_TRY(setEnum(p, "Passkeys.UserVerification", {"", "required", "preferred", "discouraged"},
                      s.passkeys_user_verification));
  VERIFYD_TRY(setBool(p, "VerifyEventSubscriptionEnabled", s.verify_event_subscription_enabled));
  return {};
}

// Resources of the Twilio API that verifyd does not serve yet: named, not pretended.
const std::set<std::string> kLaterServiceResources = {"Passkeys"};
// Served by FactorService, when the store keeps factors.
const std::set<std::string> kFactorResources = {"Entities", "Webhooks", "AccessTokens"};
const std::set<std::string> kLaterTopResources = {"Forms"};

}  // namespace

Router::Router(Accounts& accounts, ServiceRegistry& services, RateLimitRegistry& rate_limits,
               Protection& protection, Verifier& verifier, Store& store, const PhoneNumbers& phones,
               Clock& clock, RouterOptions options, Delivery* delivery, Counters* counters,
               FactorService* factors)
    : accounts_(accounts),
      services_(services),
      rate_limits_(rate_limits),
      protection_(protection),
      phones_(phones),
      verifier_(verifier),
      store_(store),
      delivery_(delivery),
      clock_(clock),
      options_(std::move(options)),
      auth_failures_(counters ? *counters : own_counters_),
      factors_(factors) {}

ApiResponse Router::handle(const ApiRequest& req) {
  std::promise<ApiResponse> promise;
  auto future = promise.get_future();
  handle(req, [&promise](ApiResponse r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Router::handle(const ApiRequest& req, Respond respond) {
  std::string_view target = req.target;
  auto qpos = target.find('?');
  Call call{req, std::string(target.substr(0, qpos)), {}, {}, {}, {}, {}, {}};
  try {
    if (auto early = prepare(call)) return respond(std::move(*early));
    route(call, respond);
  } catch (const std::exception& e) {
    spdlog::error("unhandled error on {} {}: {}", req.method, call.path, e.what());
    respond(twilio::renderError(Error::internal(e.what()), call.resource));
  }
}

std::optional<ApiResponse> Router::prepare(Call& call) {
  const ApiRequest& req = call.req;
  std::string_view target = req.target;
  auto qpos = target.find('?');
  {
    if (call.path == "/healthz") {
      if (req.method != "GET" && req.method != "HEAD") return methodNotAllowed("GET, HEAD");
      return ApiResponse{200, R"({"status":"ok"})", {}};
    }
    call.resource = call.path.rfind("/v2/", 0) == 0 ? call.path.substr(3) : call.path;
    // Split and decode the path. A `+` stays literal: Node sends `/Verifications/+1555…`.
    std::string_view rest = call.path;
    while (!rest.empty()) {
      rest.remove_prefix(1);
      auto slash = rest.find('/');
      auto seg = twilio::decodePathSegment(rest.substr(0, slash));
      if (!seg) return twilio::renderError(Error::notFound(), call.resource);
      call.segments.push_back(std::move(*seg));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    if (!call.segments.empty() && call.segments.back().empty()) call.segments.pop_back();
    // Delivery receipts from providers: authenticated by the token in their URL, not by Basic.
    if (call.segments.size() == 4 && call.segments[0] == "callbacks" && call.segments[1] == "v1")
      return callback(call);
    bool api = !call.segments.empty() && (call.segments[0] == "v2" || call.segments[0] == "dev" ||
                                          call.segments[0] == "admin");
    if (!api) return twilio::renderError(Error::notFound(), call.resource);

    const UnixTime now = clock_.now();
    const std::string& client = req.client_address;
    const std::string counter = "auth-failures:" + client;
    auto failed = auth_failures_.count(counter, options_.auth_failure_window, now);
    if (!failed) return twilio::renderError(failed.error(), call.resource);
    if (*failed >= options_.auth_failures_before_refusal) {
      Error e = Error::of(ErrorKind::kRateLimited, "Too many requests");
      e.retry_after = options_.auth_failure_window;
      return twilio::renderError(e, call.resource);
    }
    // A device enrolling or answering with an access token: HTTP Basic `token:<JWT>`.
    auto credentials = basicCredentials(req.authorization);
    Result<std::string> account = fail(Error::of(ErrorKind::kUnauthenticated));
    if (factors_ && credentials && credentials->first == "token") {
      auto claims = factors_->authenticateDevice(credentials->second);
      if (claims) {
        account = claims->account_sid;
        call.device = std::move(*claims);
      } else {
        account = fail(claims.error());
      }
    } else {
      account = authenticate(accounts_, req.authorization);
    }
    if (!account) {
      ApiResponse r = twilio::renderError(account.error(), call.resource);
      if (account.error().kind == ErrorKind::kUnauthenticated) {
        auto failures = auth_failures_.record(counter, options_.auth_failure_window, now);
        int over = failures ? *failures - options_.auth_failures_before_delay : 0;
        if (over > 0) r.delay_ms = std::min(5000, 1000 * over);
      }
      return r;
    }
    call.account_sid = *account;

    auto query = twilio::parseForm(qpos == std::string_view::npos ? "" : target.substr(qpos + 1));
    if (!query) return twilio::renderError(query.error(), call.resource);
    call.query = std::move(*query);
    if (req.method == "POST") {
      std::string_view ct = req.content_type;
      ct = ct.substr(0, ct.find(';'));
      while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
      bool form_type = ct.empty() || ct == "application/x-www-form-urlencoded";
      if (!form_type && !req.body.empty())
        return twilio::renderError(Error::of(ErrorKind::kUnsupportedMediaType,
                                             "Unsupported Media Type: POST bodies must be "
                                             "application/x-www-form-urlencoded"),
                                   call.resource);
      auto form = twilio::parseForm(req.body);
      if (!form) return twilio::renderError(form.error(), call.resource);
      call.form = std::move(*form);
    }
    return std::nullopt;
  }
}

void Router::route(Call& c, Respond& respond) {
  const auto& s = c.segments;
  const auto n = s.size();
  auto notFound = [&] { return respond(twilio::renderError(Error::notFound(), c.resource)); };
  if (c.device && !deviceAllowed(c)) return respond(forbidden());
  if (s[0] == "dev") {
    if (n == 3 && s[1] == "v1" && s[2] == "Messages" && options_.dev_outbox) {
      if (c.req.method != "GET") return respond(methodNotAllowed("GET"));
      return respond(devMessages(c));
    }
    return notFound();
  }
  if (s[0] == "admin") {
    if (n == 3 && s[1] == "v1" && s[2] == "GeoPermissions") return respond(geoPermissions(c));
    if (n == 4 && s[1] == "v1" && s[2] == "FraudGuard" && s[3] == "BlockedPrefixes")
      return respond(fraudBlocks(c));
    if (n == 5 && s[1] == "v1" && s[2] == "FraudGuard" && s[3] == "BlockedPrefixes")
      return respond(fraudBlock(c, s[4]));
    return notFound();
  }
  if (n < 2) return notFound();
  if (s[1] == "PhoneNumbers" && n == 3) return respond(lookup(c, s[2]));
  if (s[1] == "Attempts") {
    if (n == 2) return respond(attempts(c));
    if (n == 3 && s[2] == "Summary") return respond(attemptsSummary(c));
    if (n == 3) return respond(attempt(c, s[2]));
    return notFound();
  }
  if (s[1] == "Templates" && n == 2) return respond(templates(c));
  if (s[1] == "SafeList" && n >= 3 && s[2] == "Numbers") {
    if (n == 3) return respond(safeList(c));
    if (n == 4) return respond(safeNumber(c, s[3]));
    return notFound();
  }
  if (s[1] == "Services") {
    if (n == 2) return respond(services(c));
    if (n == 3) return respond(service(c, s[2]));
    if (n == 4 && s[3] == "Verifications") return verifications(c, s[2], std::move(respond));
    if (n == 5 && s[3] == "Verifications") return verification(c, s[2], s[4], std::move(respond));
    if (n == 4 && s[3] == "VerificationCheck")
      return verificationCheck(c, s[2], std::move(respond));
    if (n >= 4 && s[3] == "RateLimits") {
      if (n == 4) return respond(rateLimits(c, s[2]));
      if (n == 5) return respond(rateLimit(c, s[2], s[4]));
      if (n == 6 && s[5] == "Buckets") return respond(buckets(c, s[2], s[4]));
      if (n == 7 && s[5] == "Buckets") return respond(bucket(c, s[2], s[4], s[6]));
      return notFound();
    }
    if (n == 4 && s[3] == "MessagingConfigurations") return respond(messagingConfigs(c, s[2]));
    if (n == 5 && s[3] == "MessagingConfigurations") return respond(messagingConfig(c, s[2], s[4]));
    if (n >= 4 && kFactorResources.count(s[3])) {
      if (!factors_)
        return respond(twilio::renderError(
            Error::of(ErrorKind::kNotImplemented,
                      "Not implemented in verifyd yet: " + s[3] + " (the store keeps no factors)"),
            c.resource));
      if (s[3] == "Entities") {
        if (n == 4) return respond(entities(c, s[2]));
        if (n == 5) return respond(entity(c, s[2], s[4]));
        if (n == 6 && s[5] == "Factors") return respond(factors(c, s[2], s[4]));
        if (n == 7 && s[5] == "Factors") return respond(factor(c, s[2], s[4], s[6]));
        if (n == 6 && s[5] == "Challenges") return respond(challenges(c, s[2], s[4]));
        if (n == 7 && s[5] == "Challenges") return respond(challenge(c, s[2], s[4], s[6]));
        if (n == 8 && s[5] == "Challenges" && s[7] == "Notifications")
          return respond(notifications(c, s[2], s[4], s[6]));
      } else if (s[3] == "AccessTokens") {
        if (n == 4) return respond(accessTokens(c, s[2]));
        if (n == 5) return respond(accessToken(c, s[2], s[4]));
      } else {
        if (n == 4) return respond(webhooks(c, s[2]));
        if (n == 5) return respond(webhook(c, s[2], s[4]));
      }
      return notFound();
    }
    if (n >= 4 && kLaterServiceResources.count(s[3]))
      return respond(twilio::renderError(
          Error::of(ErrorKind::kNotImplemented, "Not implemented in verifyd yet: " + s[3]),
          c.resource));
    return notFound();
  }
  if (kLaterTopResources.count(s[1]))
    return respond(twilio::renderError(
        Error::of(ErrorKind::kNotImplemented, "Not implemented in verifyd yet: " + s[1]),
        c.resource));
  return notFound();
}

ApiResponse Router::services(Call& c) {
  if (c.req.method == "POST") {
    ServiceSettings settings;
    if (!c.form.has("FriendlyName"))
      return twilio::renderError(Error::missing("FriendlyName"), c.resource);
    if (auto st = applyServiceParams(c.form, settings); !st)
      return twilio::renderError(st.error(), c.resource);
    auto created = services_.create(c.account_sid, std::move(settings));
    if (!created) return twilio::renderError(created.error(), c.resource);
    return json(201, twilio::encodeService(*created, options_.public_url));
  }
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    auto page = services_.list(c.account_sid, req->cursor, req->page_size);
    if (!page) return twilio::renderError(page.error(), c.resource);
    ojson body;
    ojson items = ojson::array();
    for (const auto& s : page->items)
      items.push_back(twilio::encodeService(s, options_.public_url));
    body["services"] = std::move(items);
    body["meta"] =
        twilio::pageMeta(*req, *page, options_.public_url + "/v2/Services", "", "services");
    return json(200, body);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::service(Call& c, const std::string& sid) {
  if (c.req.method == "GET") {
    auto s = services_.fetch(c.account_sid, sid);
    if (!s) return twilio::renderError(s.error(), c.resource);
    return json(200, twilio::encodeService(*s, options_.public_url));
  }
  if (c.req.method == "POST") {
    auto s = services_.update(c.account_sid, sid, [&](ServiceSettings& settings) {
      return applyServiceParams(c.form, settings);
    });
    if (!s) return twilio::renderError(s.error(), c.resource);
    return json(200, twilio::encodeService(*s, options_.public_url));
  }
  if (c.req.method == "DELETE") {
    if (auto st = services_.remove(c.account_sid, sid); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, POST, DELETE");
}

namespace {
// Completes a verification request: encodes on the executor's thread, then responds.
Done<Verification> reply(Respond respond, std::string resource, int status,
                         std::function<std::string(const Verification&)> encode) {
  return [respond = std::move(respond), resource = std::move(resource), status,
          encode = std::move(encode)](Result<Verification> r) {
    if (!r) return respond(twilio::renderError(r.error(), resource));
    respond(ApiResponse{status, encode(*r), {}});
  };
}
}  // namespace

void Router::verifications(Call& c, const std::string& service_sid, Respond respond) {
  if (c.req.method != "POST") return respond(methodNotAllowed("POST"));
  StartParams p;
  p.to = c.form.get("To").value_or("");
  p.channel = c.form.get("Channel").value_or("");
  p.custom_code = c.form.get("CustomCode");
  p.custom_friendly_name = c.form.get("CustomFriendlyName");
  if (p.custom_friendly_name && p.custom_friendly_name->empty()) p.custom_friendly_name.reset();
  p.amount = c.form.get("Amount");
  p.payee = c.form.get("Payee");
  if (auto risk = c.form.get("RiskCheck")) {
    if (*risk != "enable" && *risk != "disable")
      return respond(
          twilio::renderError(Error::invalid("RiskCheck", "enable or disable"), c.resource));
    p.risk_check = *risk == "enable";
  }
  p.locale = c.form.get("Locale").value_or("");
  p.app_hash = c.form.get("AppHash").value_or("");
  p.template_sid = c.form.get("TemplateSid").value_or("");
  // JSON objects of strings: TemplateCustomSubstitutions, ChannelConfiguration.substitutions.
  auto stringMap = [](const nlohmann::json& j, std::map<std::string, std::string>& out) {
    if (!j.is_object()) return false;
    for (auto& [k, v] : j.items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
    return true;
  };
  if (auto subs = c.form.get("TemplateCustomSubstitutions")) {
    auto parsed = nlohmann::json::parse(*subs, nullptr, false);
    if (!stringMap(parsed, p.template_substitutions))
      return respond(twilio::renderError(
          Error::invalid("TemplateCustomSubstitutions", "must be a JSON object"), c.resource));
  }
  if (auto config = c.form.get("ChannelConfiguration")) {
    auto parsed = nlohmann::json::parse(*config, nullptr, false);
    if (!parsed.is_object())
      return respond(twilio::renderError(
          Error::invalid("ChannelConfiguration", "must be a JSON object"), c.resource));
    auto text = [&](const char* k) {
      auto it = parsed.find(k);
      return it != parsed.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    p.email_from = text("from");
    p.email_from_name = text("from_name");
    if (auto it = parsed.find("substitutions"); it != parsed.end())
      if (!stringMap(*it, p.email_substitutions))
        return respond(twilio::renderError(
            Error::invalid("ChannelConfiguration", "substitutions must be a JSON object"),
            c.resource));
    // Header injection: an address or name with a line break is refused, not sent.
    for (const auto& v : {p.email_from, p.email_from_name})
      if (v.find_first_of("\r\n") != std::string::npos)
        return respond(twilio::renderError(
            Error::invalid("ChannelConfiguration", "from and from_name must be one line"),
            c.resource));
  }
  if (auto limits = c.form.get("RateLimits")) {
    // A JSON object of unique name -> value, compact (Node) or with spaces (Python).
    auto parsed = nlohmann::json::parse(*limits, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object())
      return respond(
          twilio::renderError(Error::invalid("RateLimits", "must be a JSON object"), c.resource));
    for (auto& [name, value] : parsed.items()) {
      if (value.is_string())
        p.rate_limits.emplace_back(name, value.get<std::string>());
      else if (value.is_number() || value.is_boolean())
        p.rate_limits.emplace_back(name, value.dump());
      else
        return respond(twilio::renderError(
            Error::invalid("RateLimits", "the value of '" + name + "' must be a string"),
            c.resource));
    }
  }
  verifier_.startAsync(c.account_sid, service_sid, p,
                       reply(std::move(respond), c.resource, 201,
                             [base = options_.public_url](const Verification& v) {
                               return twilio::encodeVerification(v, base);
                             }));
}

void Router::verification(Call& c, const std::string& service_sid, const std::string& key,
                          Respond respond) {
  if (c.req.method == "GET") {
    auto v = verifier_.fetch(c.account_sid, service_sid, key);
    if (!v) return respond(twilio::renderError(v.error(), c.resource));
    return respond(ApiResponse{200, twilio::encodeVerification(*v, options_.public_url), {}});
  }
  if (c.req.method == "POST") {
    return verifier_.updateAsync(c.account_sid, service_sid, key, c.form.get("Status").value_or(""),
                                 reply(std::move(respond), c.resource, 200,
                                       [base = options_.public_url](const Verification& v) {
                                         return twilio::encodeVerification(v, base);
                                       }));
  }
  respond(methodNotAllowed("GET, POST"));
}

void Router::verificationCheck(Call& c, const std::string& service_sid, Respond respond) {
  if (c.req.method != "POST") return respond(methodNotAllowed("POST"));
  CheckParams p;
  p.to = c.form.get("To");
  p.verification_sid = c.form.get("VerificationSid");
  p.code = c.form.get("Code");
  p.amount = c.form.get("Amount");
  p.payee = c.form.get("Payee");
  verifier_.checkAsync(c.account_sid, service_sid, p,
                       reply(std::move(respond), c.resource, 200, [](const Verification& v) {
                         return twilio::encodeVerificationCheck(v);
                       }));
}

namespace {
template <class T, class Encode>
ApiResponse listPage(const Result<Page<T>>& page, const twilio::PageRequest& req,
                     const std::string& url, const char* key, const std::string& resource,
                     Encode encode) {
  if (!page) return twilio::renderError(page.error(), resource);
  ojson items = ojson::array();
  for (const auto& item : page->items) items.push_back(encode(item));
  ojson body;
  body[key] = std::move(items);
  body["meta"] = twilio::pageMeta(req, *page, url, "", key);
  return json(200, body);
}

template <class T, class Encode>
ApiResponse one(const Result<T>& r, int status, const std::string& resource, Encode encode) {
  if (!r) return twilio::renderError(r.error(), resource);
  return json(status, encode(*r));
}

// Max and Interval of a bucket: positive integers (an interval of up to 30 days).
Result<std::pair<std::optional<int>, std::optional<int>>> bucketParams(const Params& form) {
  auto max = form.getInt("Max", 1, 1000000000);
  if (!max) return fail(max.error());
  auto interval = form.getInt("Interval", 1, 30 * 86400);
  if (!interval) return fail(interval.error());
  return std::pair{*max, *interval};
}
}  // namespace

// Lookups v2 (lookups.twilio.com/v2/PhoneNumbers/{PhoneNumber}) from offline metadata: validity,
// formats, country, and line_type_intelligence's type. Packages that need a carrier's data
// answer with their fields null and error_code 60600 (unprovisioned), rather than inventions.
ApiResponse Router::lookup(Call& c, const std::string& number) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  static const std::vector<std::string> kCarrierPackages = {
      "caller_name",    "sim_swap",          "call_forwarding",  "line_status",
      "identity_match", "reassigned_number", "sms_pumping_risk", "phone_number_quality_score",
      "pre_fill"};
  std::set<std::string> fields;
  for (const auto& value : c.query.all("Fields")) {
    std::string_view rest = value;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string field(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (field.empty()) continue;
      if (field != "line_type_intelligence" &&
          std::find(kCarrierPackages.begin(), kCarrierPackages.end(), field) ==
              kCarrierPackages.end())
        return twilio::renderError(Error::invalid("Fields", "unknown package " + field),
                                   c.resource);
      fields.insert(field);
    }
  }
  NumberInfo info = phones_.describe(number, c.query.get("CountryCode").value_or(""));
  auto orNull = [](const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); };
  ojson j;
  j["calling_country_code"] = orNull(info.calling_country_code);
  j["country_code"] = orNull(info.country_code);
  j["phone_number"] = info.e164.empty() ? number : info.e164;
  j["national_format"] = orNull(info.national_format);
  j["valid"] = info.valid;
  j["validation_errors"] =
      info.validation_errors.empty() ? ojson(nullptr) : ojson(info.validation_errors);
  auto unavailable = [&](const char* name, std::initializer_list<const char*> keys) {
    if (!fields.count(name)) return ojson(nullptr);
    ojson o;
    for (const char* k : keys) o[k] = nullptr;
    o["error_code"] = 60600;
    return o;
  };
  j["caller_name"] = unavailable("caller_name", {"caller_name", "caller_type"});
  j["sim_swap"] = unavailable(
      "sim_swap", {"last_sim_swap", "carrier_name", "mobile_country_code", "mobile_network_code"});
  j["call_forwarding"] = unavailable("call_forwarding", {"call_forwarding_enabled"});
  j["line_status"] = unavailable("line_status", {"status"});
  if (fields.count("line_type_intelligence")) {
    ojson lti;
    lti["mobile_country_code"] = nullptr;
    lti["mobile_network_code"] = nullptr;
    lti["carrier_name"] = nullptr;  // no carrier data offline
    lti["type"] = info.valid ? ojson(info.line_type) : ojson(nullptr);
    lti["error_code"] = info.valid ? ojson(nullptr) : ojson(60600);
    j["line_type_intelligence"] = std::move(lti);
  } else {
    j["line_type_intelligence"] = nullptr;
  }
  j["identity_match"] = unavailable("identity_match", {"first_name_match", "last_name_match"});
  j["reassigned_number"] = unavailable("reassigned_number", {"is_number_reassigned"});
  j["sms_pumping_risk"] = unavailable("sms_pumping_risk", {"sms_pumping_risk_score"});
  j["phone_number_quality_score"] = unavailable("phone_number_quality_score", {"quality_score"});
  j["pre_fill"] = unavailable("pre_fill", {"first_name", "last_name"});
  j["url"] = options_.public_url + "/v2/PhoneNumbers/" + (info.e164.empty() ? number : info.e164);
  return json(200, j);
}

ApiResponse Router::safeList(Call& c) {
  if (c.req.method != "POST") return methodNotAllowed("POST");
  return one(protection_.addSafeNumber(c.account_sid, c.form.get("PhoneNumber").value_or("")), 201,
             c.resource,
             [&](const SafeNumber& n) { return twilio::encodeSafeNumber(n, options_.public_url); });
}

ApiResponse Router::safeNumber(Call& c, const std::string& number) {
  if (c.req.method == "GET")
    return one(
        protection_.fetchSafeNumber(c.account_sid, number), 200, c.resource,
        [&](const SafeNumber& n) { return twilio::encodeSafeNumber(n, options_.public_url); });
  if (c.req.method == "DELETE") {
    if (auto st = protection_.removeSafeNumber(c.account_sid, number); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, ""};
  }
  return methodNotAllowed("GET, DELETE");
}

// verifyd's own admin resource (not part of Twilio's API): the caller's geo permissions.
ApiResponse Router::geoPermissions(Call& c) {
  if (c.req.method == "POST") {
    return one(protection_.setGeoPermission(c.account_sid, c.form.get("Channel").value_or(""),
                                            c.form.get("Country").value_or(""),
                                            c.form.get("Permission").value_or("")),
               200, c.resource, twilio::encodeGeoPermission);
  }
  if (c.req.method == "GET") {
    auto rules = protection_.geoPermissions(c.account_sid);
    if (!rules) return twilio::renderError(rules.error(), c.resource);
    ojson items = ojson::array();
    for (const auto& r : *rules) items.push_back(twilio::encodeGeoPermission(r));
    ojson body;
    body["geo_permissions"] = std::move(items);
    return json(200, body);
  }
  return methodNotAllowed("GET, POST");
}

// verifyd's admin resource: Fraud Guard's blocked prefixes of the caller's account.
ApiResponse Router::fraudBlocks(Call& c) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  auto blocks = protection_.fraudBlocks(c.account_sid);
  if (!blocks) return twilio::renderError(blocks.error(), c.resource);
  ojson items = ojson::array();
  for (const auto& b : *blocks)
    items.push_back(ojson{{"prefix", b.prefix},
                          {"blocked_until", formatIso8601(b.blocked_until)},
                          {"date_created", formatIso8601(b.date_created)},
                          {"sends", b.sends},
                          {"conversions", b.conversions}});
  ojson body;
  body["blocked_prefixes"] = std::move(items);
  return json(200, body);
}

ApiResponse Router::fraudBlock(Call& c, const std::string& prefix) {
  if (c.req.method != "DELETE") return methodNotAllowed("DELETE");
  if (auto st = protection_.liftFraudBlock(c.account_sid, prefix); !st)
    return twilio::renderError(st.error(), c.resource);
  return ApiResponse{204, ""};
}

ApiResponse Router::rateLimits(Call& c, const std::string& service_sid) {
  auto encode = [&](const RateLimit& r) { return twilio::encodeRateLimit(r, options_.public_url); };
  if (c.req.method == "POST")
    return one(
        rate_limits_.create(c.account_sid, service_sid, c.form.get("UniqueName").value_or(""),
                            c.form.get("Description")),
        201, c.resource, encode);
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    return listPage(rate_limits_.list(c.account_sid, service_sid, req->cursor, req->page_size),
                    *req, options_.public_url + "/v2/Services/" + service_sid + "/RateLimits",
                    "rate_limits", c.resource, encode);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::rateLimit(Call& c, const std::string& service_sid, const std::string& sid) {
  auto encode = [&](const RateLimit& r) { return twilio::encodeRateLimit(r, options_.public_url); };
  if (c.req.method == "GET")
    return one(rate_limits_.fetch(c.account_sid, service_sid, sid), 200, c.resource, encode);
  if (c.req.method == "POST")
    return one(rate_limits_.update(c.account_sid, service_sid, sid, c.form.get("Description")), 200,
               c.resource, encode);
  if (c.req.method == "DELETE") {
    if (auto st = rate_limits_.remove(c.account_sid, service_sid, sid); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, POST, DELETE");
}

ApiResponse Router::buckets(Call& c, const std::string& service_sid, const std::string& limit_sid) {
  auto encode = [&](const Bucket& b) { return twilio::encodeBucket(b, options_.public_url); };
  if (c.req.method == "POST") {
    auto params = bucketParams(c.form);
    if (!params) return twilio::renderError(params.error(), c.resource);
    return one(rate_limits_.createBucket(c.account_sid, service_sid, limit_sid, params->first,
                                         params->second),
               201, c.resource, encode);
  }
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    return listPage(rate_limits_.listBuckets(c.account_sid, service_sid, limit_sid, req->cursor,
                                             req->page_size),
                    *req,
                    options_.public_url + "/v2/Services/" + service_sid + "/RateLimits/" +
                        limit_sid + "/Buckets",
                    "buckets", c.resource, encode);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::bucket(Call& c, const std::string& service_sid, const std::string& limit_sid,
                           const std::string& sid) {
  auto encode = [&](const Bucket& b) { return twilio::encodeBucket(b, options_.public_url); };
  if (c.req.method == "GET")
    return one(rate_limits_.fetchBucket(c.account_sid, service_sid, limit_sid, sid), 200,
               c.resource, encode);
  if (c.req.method == "POST") {
    auto params = bucketParams(c.form);
    if (!params) return twilio::renderError(params.error(), c.resource);
    return one(rate_limits_.updateBucket(c.account_sid, service_sid, limit_sid, sid, params->first,
                                         params->second),
               200, c.resource, encode);
  }
  if (c.req.method == "DELETE") {
    if (auto st = rate_limits_.removeBucket(c.account_sid, service_sid, limit_sid, sid); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, POST, DELETE");
}

ApiResponse Router::devMessages(Call& c) {
  auto req = twilio::parsePageRequest(c.query);
  if (!req) return twilio::renderError(req.error(), c.resource);
  std::string to = c.query.get("To").value_or("");
  // An unencoded `+` in the query decodes to a space: a phone number starts with `+`.
  if (!to.empty() && to[0] == ' ') to[0] = '+';
  auto page = store_.listMessages(c.account_sid, to, req->cursor, req->page_size);
  if (!page) return twilio::renderError(page.error(), c.resource);
  ojson items = ojson::array();
  for (const auto& m : page->items) items.push_back(twilio::encodeOutboxMessage(m));
  ojson body;
  body["messages"] = std::move(items);
  std::string extra = to.empty() ? "" : "To=" + twilio::urlEncode(to) + "&";
  body["meta"] =
      twilio::pageMeta(*req, *page, options_.public_url + "/dev/v1/Messages", extra, "messages");
  return json(200, body);
}

// ---- delivery: receipts, attempts, templates, messaging configurations ---------------------

ApiResponse Router::callback(Call& c) {
  const auto& s = c.segments;
  auto notFound = [&] { return twilio::renderError(Error::notFound(), c.resource); };
  if (!delivery_) return notFound();
  if (c.req.method != "GET" && c.req.method != "POST") return methodNotAllowed("GET, POST");
  std::string_view target = c.req.target;
  auto qpos = target.find('?');
  auto query = twilio::parseForm(qpos == std::string_view::npos ? "" : target.substr(qpos + 1));
  if (!query) return twilio::renderError(query.error(), c.resource);
  Receipt r;
  r.provider = s[2];
  r.attempt_sid = s[3];
  for (const auto& [k, v] : query->items()) r.fields[k] = v;
  r.token = r.fields["t"];
  if (c.req.method == "POST" && !c.req.body.empty()) {
    std::string_view ct = c.req.content_type;
    if (ct.find("json") != std::string_view::npos) {
      auto j = nlohmann::json::parse(c.req.body, nullptr, false);
      if (!j.is_object())
        return twilio::renderError(Error::invalid("body", "not a JSON object"), c.resource);
      for (auto& [k, v] : j.items())
        if (!v.is_null()) r.fields[k] = v.is_string() ? v.get<std::string>() : v.dump();
    } else {
      auto form = twilio::parseForm(c.req.body);
      if (!form) return twilio::renderError(form.error(), c.resource);
      for (const auto& [k, v] : form->items()) r.fields[k] = v;
    }
  }
  if (auto st = delivery_->receipt(r); !st) return twilio::renderError(st.error(), c.resource);
  return ApiResponse{200, R"({"status":"ok"})", {}};
}

namespace {
Result<AttemptFilter> attemptFilter(const Params& q) {
  AttemptFilter f;
  f.service_sid = q.get("VerifyServiceSid").value_or("");
  f.verification_sid = q.get("VerificationSid").value_or("");
  f.channel = q.get("Channel").value_or("");
  f.to = q.get("ChannelData.To").value_or("");
  // An unencoded `+` in the query decodes to a space: a phone number starts with `+`.
  if (!f.to.empty() && f.to[0] == ' ') f.to[0] = '+';
  f.country = q.get("Country").value_or("");
  f.destination_prefix = q.get("DestinationPrefix").value_or("");
  if (!f.destination_prefix.empty() && f.destination_prefix[0] == ' ')
    f.destination_prefix[0] = '+';
  for (auto [name, field] : {std::pair{"DateCreatedAfter", &f.created_after},
                             std::pair{"DateCreatedBefore", &f.created_before}}) {
    if (auto v = q.get(name)) {
      auto t = parseIso8601(*v);
      if (!t) return fail(Error::invalid(name, "must be yyyy-MM-ddTHH:mm:ssZ"));
      *field = *t;
    }
  }
  if (auto st = q.get("Status")) {
    std::string lower;
    for (char ch : *st) lower.push_back(static_cast<char>(std::tolower(ch)));
    if (lower == "converted")
      f.converted = true;
    else if (lower == "unconverted")
      f.converted = false;
    else
      return fail(Error::invalid("Status", "converted or unconverted"));
  }
  if (!f.channel.empty() && f.channel != "sms" && f.channel != "call" && f.channel != "email" &&
      f.channel != "whatsapp" && f.channel != "rbm")
    return fail(Error::invalid("Channel", "sms, call, email, whatsapp or rbm"));
  return f;
}

// The filters of a list as a query string, for its paging URLs.
std::string filterQuery(const Params& q, std::initializer_list<const char*> names) {
  std::string out;
  for (const char* n : names)
    if (auto v = q.get(n)) out += std::string(n) + "=" + twilio::urlEncode(*v) + "&";
  return out;
}
}  // namespace

ApiResponse Router::attempts(Call& c) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  auto filter = attemptFilter(c.query);
  if (!filter) return twilio::renderError(filter.error(), c.resource);
  auto req = twilio::parsePageRequest(c.query);
  if (!req) return twilio::renderError(req.error(), c.resource);
  auto page = store_.listAttempts(c.account_sid, *filter, req->cursor, req->page_size);
  if (!page) return twilio::renderError(page.error(), c.resource);
  ojson items = ojson::array();
  for (const auto& a : page->items) items.push_back(twilio::encodeAttempt(a, options_.public_url));
  ojson body;
  body["attempts"] = std::move(items);
  body["meta"] = twilio::pageMeta(
      *req, *page, options_.public_url + "/v2/Attempts",
      filterQuery(c.query, {"DateCreatedAfter", "DateCreatedBefore", "ChannelData.To", "Country",
                            "Channel", "VerifyServiceSid", "VerificationSid", "Status"}),
      "attempts");
  return json(200, body);
}

ApiResponse Router::attempt(Call& c, const std::string& sid) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  auto found = store_.getAttempt(c.account_sid, sid);
  if (!found) return twilio::renderError(found.error(), c.resource);
  if (!*found) return twilio::renderError(Error::notFound(), c.resource);
  return json(200, twilio::encodeAttempt(**found, options_.public_url));
}

ApiResponse Router::attemptsSummary(Call& c) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  for (const char* unsupported : {"VerificationSid", "ChannelData.To", "Status"})
    if (c.query.has(unsupported))
      return twilio::renderError(Error::invalid(unsupported, "not a filter of the summary"),
                                 c.resource);
  auto filter = attemptFilter(c.query);
  if (!filter) return twilio::renderError(filter.error(), c.resource);
  auto summary = store_.summarizeAttempts(c.account_sid, *filter);
  if (!summary) return twilio::renderError(summary.error(), c.resource);
  return json(200, twilio::encodeAttemptsSummary(*summary, options_.public_url));
}

ApiResponse Router::templates(Call& c) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  auto req = twilio::parsePageRequest(c.query);
  if (!req) return twilio::renderError(req.error(), c.resource);
  const std::string name = c.query.get("FriendlyName").value_or("");
  // The built-in templates, in a fixed order: their position is their paging key.
  Page<MessageTemplate> page;
  const auto& all = builtinTemplates();
  long long seq = 0;
  for (const auto& t : all) {
    ++seq;
    if (!name.empty() && t.friendly_name.find(name) == std::string::npos) continue;
    using D = PageCursor::Direction;
    if (req->cursor.direction == D::kAfter && seq <= req->cursor.seq) continue;
    if (req->cursor.direction == D::kBefore && seq >= req->cursor.seq) continue;
    if (static_cast<int>(page.items.size()) == req->page_size) {
      page.has_next = true;
      break;
    }
    if (page.items.empty()) page.first_seq = seq;
    page.last_seq = seq;
    page.items.push_back(t);
  }
  page.has_previous = page.first_seq > 1;
  ojson items = ojson::array();
  for (const auto& t : page.items) items.push_back(twilio::encodeTemplate(t, c.account_sid));
  ojson body;
  body["templates"] = std::move(items);
  body["meta"] = twilio::pageMeta(*req, page, options_.public_url + "/v2/Templates",
                                  filterQuery(c.query, {"FriendlyName"}), "templates");
  return json(200, body);
}

namespace {
bool isCountryKey(const std::string& s) {
  return s == "all" || (s.size() == 2 && std::isupper(static_cast<unsigned char>(s[0])) &&
                        std::isupper(static_cast<unsigned char>(s[1])));
}
}  // namespace

ApiResponse Router::messagingConfigs(Call& c, const std::string& service_sid) {
  auto svc = services_.fetch(c.account_sid, service_sid);
  if (!svc) return twilio::renderError(svc.error(), c.resource);
  auto encode = [&](const MessagingConfiguration& m) {
    return twilio::encodeMessagingConfig(m, options_.public_url);
  };
  if (c.req.method == "POST") {
    auto country = c.form.get("Country");
    auto mg = c.form.get("MessagingServiceSid");
    if (!country) return twilio::renderError(Error::missing("Country"), c.resource);
    if (!mg) return twilio::renderError(Error::missing("MessagingServiceSid"), c.resource);
    if (!isCountryKey(*country))
      return twilio::renderError(Error::invalid("Country", "ISO alpha-2 or 'all'"), c.resource);
    if (!isSid(*mg, "MG"))
      return twilio::renderError(Error::invalid("MessagingServiceSid", "an MG SID"), c.resource);
    const UnixTime now = clock_.now();
    MessagingConfiguration m{c.account_sid, service_sid, *country, *mg, now, now};
    if (auto st = store_.createMessagingConfig(m); !st)
      return twilio::renderError(st.error(), c.resource);
    return json(201, encode(m));
  }
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    return listPage(
        store_.listMessagingConfigs(service_sid, req->cursor, req->page_size), *req,
        options_.public_url + "/v2/Services/" + service_sid + "/MessagingConfigurations",
        "messaging_configurations", c.resource, encode);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::messagingConfig(Call& c, const std::string& service_sid,
                                    const std::string& country) {
  auto svc = services_.fetch(c.account_sid, service_sid);
  if (!svc) return twilio::renderError(svc.error(), c.resource);
  auto encode = [&](const MessagingConfiguration& m) {
    return twilio::encodeMessagingConfig(m, options_.public_url);
  };
  if (c.req.method == "GET") {
    auto found = store_.getMessagingConfig(service_sid, country);
    if (!found) return twilio::renderError(found.error(), c.resource);
    if (!*found) return twilio::renderError(Error::notFound(), c.resource);
    return json(200, encode(**found));
  }
  if (c.req.method == "POST") {
    auto mg = c.form.get("MessagingServiceSid");
    if (!mg) return twilio::renderError(Error::missing("MessagingServiceSid"), c.resource);
    if (!isSid(*mg, "MG"))
      return twilio::renderError(Error::invalid("MessagingServiceSid", "an MG SID"), c.resource);
    return one(store_.updateMessagingConfig(service_sid, country, *mg, clock_.now()), 200,
               c.resource, encode);
  }
  if (c.req.method == "DELETE") {
    if (auto st = store_.deleteMessagingConfig(service_sid, country); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, POST, DELETE");
}

// ---- factors: entities, factors, challenges, notifications, access tokens, webhooks --------

namespace {
// An integer parameter, any value: FactorService checks the ranges and names the parameter.
Result<std::optional<int>> intParam(const Params& p, const char* key) {
  return p.getInt(key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
}
}  // namespace

bool Router::deviceAllowed(const Call& c) const {
  const auto& s = c.segments;
  const auto n = s.size();
  const DeviceClaims& d = *c.device;
  if (d.factor_type != "push" || n < 6 || s[0] != "v2" || s[1] != "Services" ||
      s[2] != d.service_sid || s[3] != "Entities" || s[4] != d.identity)
    return false;
  const std::string& m = c.req.method;
  if (s[5] == "Factors") {
    if (n == 6)
      return m == "POST" && c.form.get("FactorType") == std::optional<std::string>("push");
    return n == 7 && m == "POST";
  }
  if (s[5] == "Challenges") {
    if (n == 6) return m == "GET";
    return n == 7 && (m == "GET" || m == "POST");
  }
  return false;
}

ApiResponse Router::entities(Call& c, const std::string& service_sid) {
  auto encode = [&](const Entity& e) { return twilio::encodeEntity(e, options_.public_url); };
  if (c.req.method == "POST")
    return one(factors_->createEntity(c.account_sid, service_sid, c.form.get("Identity")), 201,
               c.resource, encode);
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    return listPage(factors_->listEntities(c.account_sid, service_sid, req->cursor, req->page_size),
                    *req, options_.public_url + "/v2/Services/" + service_sid + "/Entities",
                    "entities", c.resource, encode);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::entity(Call& c, const std::string& service_sid, const std::string& identity) {
  if (c.req.method == "GET")
    return one(factors_->fetchEntity(c.account_sid, service_sid, identity), 200, c.resource,
               [&](const Entity& e) { return twilio::encodeEntity(e, options_.public_url); });
  if (c.req.method == "DELETE") {
    if (auto st = factors_->deleteEntity(c.account_sid, service_sid, identity); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, DELETE");
}

ApiResponse Router::factors(Call& c, const std::string& service_sid, const std::string& identity) {
  if (c.req.method == "POST") {
    const Params& f = c.form;
    NewFactorParams p;
    p.friendly_name = f.get("FriendlyName");
    // A device enrolling with an access token may leave the name to the token.
    if (!p.friendly_name && c.device && !c.device->factor_friendly_name.empty())
      p.friendly_name = c.device->factor_friendly_name;
    p.factor_type = f.get("FactorType");
    p.binding_alg = f.get("Binding.Alg");
    p.binding_public_key = f.get("Binding.PublicKey");
    p.binding_secret = f.get("Binding.Secret");
    p.app_id = f.get("Config.AppId");
    p.notification_platform = f.get("Config.NotificationPlatform");
    p.notification_token = f.get("Config.NotificationToken");
    p.sdk_version = f.get("Config.SdkVersion");
    p.alg = f.get("Config.Alg");
    p.metadata = f.get("Metadata");
    for (auto [key, field] :
         {std::pair{"Config.TimeStep", &p.time_step}, std::pair{"Config.Skew", &p.skew},
          std::pair{"Config.CodeLength", &p.code_length}}) {
      auto v = intParam(f, key);
      if (!v) return twilio::renderError(v.error(), c.resource);
      *field = *v;
    }
    return one(factors_->createFactor(c.account_sid, service_sid, identity, p), 201, c.resource,
               [&](const NewFactor& n) { return twilio::encodeNewFactor(n, options_.public_url); });
  }
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    return listPage(
        factors_->listFactors(c.account_sid, service_sid, identity, req->cursor, req->page_size),
        *req,
        options_.public_url + "/v2/Services/" + service_sid + "/Entities/" + identity + "/Factors",
        "factors", c.resource,
        [&](const Factor& x) { return twilio::encodeFactor(x, options_.public_url); });
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::factor(Call& c, const std::string& service_sid, const std::string& identity,
                           const std::string& sid) {
  auto encode = [&](const Factor& f) { return twilio::encodeFactor(f, options_.public_url); };
  if (c.req.method == "GET")
    return one(factors_->fetchFactor(c.account_sid, service_sid, identity, sid), 200, c.resource,
               encode);
  if (c.req.method == "POST") {
    const Params& f = c.form;
    FactorUpdateParams p;
    p.auth_payload = f.get("AuthPayload");
    p.friendly_name = f.get("FriendlyName");
    p.notification_token = f.get("Config.NotificationToken");
    p.sdk_version = f.get("Config.SdkVersion");
    p.notification_platform = f.get("Config.NotificationPlatform");
    p.alg = f.get("Config.Alg");
    for (auto [key, field] :
         {std::pair{"Config.TimeStep", &p.time_step}, std::pair{"Config.Skew", &p.skew},
          std::pair{"Config.CodeLength", &p.code_length}}) {
      auto v = intParam(f, key);
      if (!v) return twilio::renderError(v.error(), c.resource);
      *field = *v;
    }
    return one(factors_->updateFactor(c.account_sid, service_sid, identity, sid, p), 200,
               c.resource, encode);
  }
  if (c.req.method == "DELETE") {
    if (auto st = factors_->deleteFactor(c.account_sid, service_sid, identity, sid); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, POST, DELETE");
}

ApiResponse Router::challenges(Call& c, const std::string& service_sid,
                               const std::string& identity) {
  const std::string base = options_.public_url;
  if (c.req.method == "POST") {
    const Params& f = c.form;
    ChallengeParams p;
    p.factor_sid = f.get("FactorSid");
    p.expiration_date = f.get("ExpirationDate");
    p.details_message = f.get("Details.Message");
    p.details_fields = f.all("Details.Fields");
    p.hidden_details = f.get("HiddenDetails");
    p.auth_payload = f.get("AuthPayload");
    auto r = factors_->createChallenge(c.account_sid, service_sid, identity, p);
    if (!r) return twilio::renderError(r.error(), c.resource);
    return json(201, twilio::encodeChallenge(r->challenge, r->include_date, base));
  }
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    ChallengeListFilter filter{c.query.get("FactorSid"), c.query.get("Status"),
                               c.query.get("Order")};
    auto list = factors_->listChallenges(c.account_sid, service_sid, identity, filter, req->cursor,
                                         req->page_size);
    if (!list) return twilio::renderError(list.error(), c.resource);
    ojson items = ojson::array();
    for (const auto& ch : list->page.items)
      items.push_back(twilio::encodeChallenge(ch, list->include_date, base));
    ojson body;
    body["challenges"] = std::move(items);
    body["meta"] = twilio::pageMeta(
        *req, list->page,
        base + "/v2/Services/" + service_sid + "/Entities/" + identity + "/Challenges",
        filterQuery(c.query, {"FactorSid", "Status", "Order"}), "challenges");
    return json(200, body);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::challenge(Call& c, const std::string& service_sid, const std::string& identity,
                              const std::string& sid) {
  Result<ChallengeView> r = fail(Error::notFound());
  if (c.req.method == "GET") {
    r = factors_->fetchChallenge(c.account_sid, service_sid, identity, sid);
  } else if (c.req.method == "POST") {
    ChallengeUpdateParams p{c.form.get("AuthPayload"), c.form.get("Metadata")};
    r = factors_->updateChallenge(c.account_sid, service_sid, identity, sid, p);
  } else {
    return methodNotAllowed("GET, POST");
  }
  if (!r) return twilio::renderError(r.error(), c.resource);
  ApiResponse out =
      json(200, twilio::encodeChallenge(r->challenge, r->include_date, options_.public_url));
  // What a device signs to answer a push challenge: these fields, with the values just returned.
  if (c.req.method == "GET")
    out.headers.emplace_back("Twilio-Verify-Signature-Fields", challengeSignatureFieldsHeader());
  return out;
}

ApiResponse Router::notifications(Call& c, const std::string& service_sid,
                                  const std::string& identity, const std::string& challenge_sid) {
  if (c.req.method != "POST") return methodNotAllowed("POST");
  auto ttl = intParam(c.form, "Ttl");
  if (!ttl) return twilio::renderError(ttl.error(), c.resource);
  return one(
      factors_->createNotification(c.account_sid, service_sid, identity, challenge_sid, *ttl), 201,
      c.resource, [](const Notification& n) { return twilio::encodeNotification(n); });
}

ApiResponse Router::accessTokens(Call& c, const std::string& service_sid) {
  if (c.req.method != "POST") return methodNotAllowed("POST");
  AccessTokenParams p;
  p.identity = c.form.get("Identity");
  p.factor_type = c.form.get("FactorType");
  p.factor_friendly_name = c.form.get("FactorFriendlyName");
  auto ttl = intParam(c.form, "Ttl");
  if (!ttl) return twilio::renderError(ttl.error(), c.resource);
  p.ttl = *ttl;
  return one(
      factors_->createAccessToken(c.account_sid, service_sid, p), 201, c.resource,
      [&](const AccessToken& t) { return twilio::encodeAccessToken(t, options_.public_url); });
}

ApiResponse Router::accessToken(Call& c, const std::string& service_sid, const std::string& sid) {
  if (c.req.method != "GET") return methodNotAllowed("GET");
  return one(
      factors_->fetchAccessToken(c.account_sid, service_sid, sid), 200, c.resource,
      [&](const AccessToken& t) { return twilio::encodeAccessToken(t, options_.public_url); });
}

namespace {
WebhookParams webhookParams(const Params& f) {
  WebhookParams p;
  p.friendly_name = f.get("FriendlyName");
  if (f.has("EventTypes")) p.event_types = f.all("EventTypes");
  p.webhook_url = f.get("WebhookUrl");
  p.status = f.get("Status");
  p.version = f.get("Version");
  return p;
}
}  // namespace

ApiResponse Router::webhooks(Call& c, const std::string& service_sid) {
  auto encode = [&](const Webhook& w) { return twilio::encodeWebhook(w, options_.public_url); };
  if (c.req.method == "POST")
    return one(factors_->createWebhook(c.account_sid, service_sid, webhookParams(c.form)), 201,
               c.resource, encode);
  if (c.req.method == "GET") {
    auto req = twilio::parsePageRequest(c.query);
    if (!req) return twilio::renderError(req.error(), c.resource);
    return listPage(factors_->listWebhooks(c.account_sid, service_sid, req->cursor, req->page_size),
                    *req, options_.public_url + "/v2/Services/" + service_sid + "/Webhooks",
                    "webhooks", c.resource, encode);
  }
  return methodNotAllowed("GET, POST");
}

ApiResponse Router::webhook(Call& c, const std::string& service_sid, const std::string& sid) {
  auto encode = [&](const Webhook& w) { return twilio::encodeWebhook(w, options_.public_url); };
  if (c.req.method == "GET")
    return one(factors_->fetchWebhook(c.account_sid, service_sid, sid), 200, c.resource, encode);
  if (c.req.method == "POST")
    return one(factors_->updateWebhook(c.account_sid, service_sid, sid, webhookParams(c.form)), 200,
               c.resource, encode);
  if (c.req.method == "DELETE") {
    if (auto st = factors_->deleteWebhook(c.account_sid, service_sid, sid); !st)
      return twilio::renderError(st.error(), c.resource);
    return ApiResponse{204, "", {}};
  }
  return methodNotAllowed("GET, POST, DELETE");
}

}  // namespace verifyd
