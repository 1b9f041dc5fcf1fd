// Push providers for channel "push": FCM (HTTP v1, OAuth 2 service account), APNs (HTTP/2,
// ES256 provider token) and the JSON webhook. Each takes a PushNotification (the challenge's
// notification JSON) and shapes it for its platform.
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verifyd/delivery/http_client.h"
#include "verifyd/delivery/providers.h"

namespace verifyd {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string setting(const ProviderConfig& c, const std::string& key, std::string fallback = {}) {
  auto it = c.settings.find(key);
  return it == c.settings.end() || it->second.empty() ? fallback : it->second;
}

std::string trimSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

Status checkUrl(const std::string& key, const std::string& url) {
  if (!startsWith(url, "http://") && !startsWith(url, "https://"))
    return fail(Error::invalid(key, "must be an http:// or https:// URL"));
  return {};
}

Status checkPushOnly(const ProviderConfig& c) {
  for (const auto& ch : c.channels)
    if (ch != "push")
      return fail(Error::invalid("provider.channels", "provider '" + c.name + "' of type '" +
                                                          c.type + "' serves only \"push\""));
  if (c.timeout_ms <= 0) return fail(Error::invalid("timeout_ms", "must be positive"));
  return {};
}

Result<std::string> readFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Error::invalid(key, "cannot read " + path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string base64Url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = byte(i) << 16;
    for (int s : {18, 12}) out.push_back(kAlphabet[(v >> s) & 63]);
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    for (int s : {18, 12, 6}) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  return out;
}

using PKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// A private key from PEM text (PKCS#8 "PRIVATE KEY", or the traditional forms).
Result<PKey> parsePrivateKey(const std::string& key, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  PKey pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
            EVP_PKEY_free);
  if (!pkey) return fail(Error::invalid(key, "not a PEM private key"));
  return pkey;
}

// SHA-256 signature of `data` with `pkey` (RSA PKCS#1 v1.5 or ECDSA, DER).
std::string signSha256(EVP_PKEY* pkey, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    return {};
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return {};
  sig.resize(len);
  return sig;
}

// A DER ECDSA signature as JWS wants it: r || s, 32 bytes each (RFC 7518 §3.4).
std::string derToRaw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  if (!sig) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  if (BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
      BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32)
    return {};
  return raw;
}

// A compact JWS over `claims` with header `header`; alg RS256 or ES256 by the key's type.
std::string signJwt(EVP_PKEY* pkey, const OrderedJson& header, const OrderedJson& claims) {
  const std::string input = base64Url(header.dump()) + "." + base64Url(claims.dump());
  std::string sig = signSha256(pkey, input);
  if (sig.empty()) return {};
  if (EVP_PKEY_base_id(pkey) == EVP_PKEY_EC) {
    sig = derToRaw(sig);
    if (sig.empty()) return {};
  }
  return input + "." + base64Url(sig);
}

// What every platform gets besides its own envelope: the notification's fields as strings
// (FCM data values must be strings), without the device token.
OrderedJson dataFields(const Json& notification) {
  OrderedJson data = OrderedJson::object();
  data["type"] = "verify_push_challenge";
  for (const auto& [key, value] : notification.items()) {
    if (key == "token" || key == "platform" || key == "ttl" || key == "priority") continue;
    data[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return data;
}

SendResult transient(std::string message, int code = 0) {
  SendResult r;
  r.outcome = SendOutcome::kTransient;
  r.error_code = code;
  r.error_message = std::move(message);
  return r;
}

// A failed HTTP exchange as a SendResult: no answer, or an error status.
SendResult fromHttp(const char* who, int status, const std::string& error, bool not_sent,
                    const std::string& reason) {
  SendResult r;
  if (status == 0) {
    r.outcome = not_sent ? SendOutcome::kTransient : SendOutcome::kUnknown;
    r.error_message = std::string(who) + " request failed: " + error;
    return r;
  }
  r.outcome = (status == 408 || status == 429 || status >= 500) ? SendOutcome::kTransient
                                                                : SendOutcome::kPermanent;
  r.error_code = status;
  r.error_message = std::string(who) + " answered HTTP " + std::to_string(status) +
                    (reason.empty() ? "" : " (" + reason + ")");
  return r;
}

// ------------------------------------------------------------------------------------ FCM

class FcmSender final : public PushSender {
 public:
  struct Options {
    std::string base_url;
    std::string project_id;
    std::string client_email;
    std::string token_uri;
    std::string scope;
    int timeout_ms = 10000;
  };

  FcmSender(Options options, PKey key) : o_(std::move(options)), key_(std::move(key)) {}

  bool serves(const std::string& platform) const override { return platform == "fcm"; }

  SendResult push(const PushNotification& n) override {
    const Json notification = Json::parse(n.body, nullptr, false);
    if (!notification.is_object()) {
      SendResult r;
      r.outcome = SendOutcome::kPermanent;
      r.error_message = "the notification is not a JSON object";
      return r;
    }
    std::string token_error;
    const std::string access = accessToken(token_error);
    if (access.empty()) return transient("fcm: no access token: " + token_error);
    OrderedJson message;
    message["token"] = n.token;
    message["data"] = dataFields(notification);
    message["android"] = {{"priority", "high"}};
    if (n.expires_at > 0)
      message["android"]["ttl"] =
          std::to_string(n.now_or_never ? 0 : std::max<long long>(0, n.expires_at - nowSeconds())) +
          "s";
    OrderedJson body;
    body["message"] = std::move(message);
    HttpRequest req;
    req.method = "POST";
    req.url = o_.base_url + "/v1/projects/" + urlEncode(o_.project_id) + "/messages:send";
    req.headers = {{"Authorization", "Bearer " + access},
                   {"Content-Type", "application/json; charset=UTF-8"},
                   {"Expect", ""}};
    req.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    req.timeout_ms = o_.timeout_ms;
    req.connect_timeout_ms = std::min(o_.timeout_ms, 3000);
    const HttpResponse resp = httpCall(req);
    const Json answer = Json::parse(resp.body, nullptr, false);
    if (resp.status >= 200 && resp.status < 300) {
      SendResult r;
      r.outcome = SendOutcome::kAccepted;
      r.status = "sent";
      if (answer.is_object() && answer.contains("name") && answer["name"].is_string())
        r.provider_message_id = answer["name"].get<std::string>();
      return r;
    }
    std::string reason;
    if (answer.is_object() && answer.contains("error") && answer["error"].is_object())
      reason = answer["error"].value("status", std::string());
    if (resp.status == 401) {
      // The access token was revoked or expired early: fetch a new one next time.
      std::lock_guard lock(mu_);
      access_token_.clear();
      return transient("fcm answered HTTP 401 (access token refused)", 401);
    }
    return fromHttp("fcm", resp.status, resp.error, resp.not_sent, reason);
  }

 private:
  // The cached OAuth 2 access token, or a new one from the token endpoint (JWT bearer grant).
  std::string accessToken(std::string& error) {
    std::lock_guard lock(mu_);
    const std::int64_t now = nowSeconds();
    if (!access_token_.empty() && now < access_expires_ - 60) return access_token_;
    OrderedJson header = {{"alg", "RS256"}, {"typ", "JWT"}};
    OrderedJson claims = {{"iss", o_.client_email},
                          {"scope", o_.scope},
                          {"aud", o_.token_uri},
                          {"iat", now},
                          {"exp", now + 3600}};
    const std::string assertion = signJwt(key_.get(), header, claims);
    if (assertion.empty()) {
      error = "signing the assertion failed";
      return {};
    }
    HttpRequest req;
    req.method = "POST";
    req.url = o_.token_uri;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = formEncode(
        {{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}, {"assertion", assertion}});
    req.timeout_ms = o_.timeout_ms;
    req.connect_timeout_ms = std::min(o_.timeout_ms, 3000);
    const HttpResponse resp = httpCall(req);
    if (resp.status != 200) {
      error = resp.status == 0 ? resp.error
                               : "token endpoint answered HTTP " + std::to_string(resp.status);
      return {};
    }
    const Json answer = Json::parse(resp.body, nullptr, false);
    if (!answer.is_object() || !answer.contains("access_token") ||
        !answer["access_token"].is_string()) {
      error = "token endpoint answered without access_token";
      return {};
    }
    access_token_ = answer["access_token"].get<std::string>();
    std::int64_t ttl = 3600;
    if (answer.contains("expires_in") && answer["expires_in"].is_number_integer())
      ttl = answer["expires_in"].get<std::int64_t>();
    access_expires_ = now + ttl;
    return access_token_;
  }

  Options o_;
  PKey key_;
  std::mutex mu_;
  std::string access_token_;
  std::int64_t access_expires_ = 0;
};

// ----------------------------------------------------------------------------------- APNs

size_t appendText(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

class ApnsSender final : public PushSender {
 public:
  struct Options {
    std::string base_url;
    std::string topic;
    std::string key_id;
    std::string team_id;
    std::string push_type;
    std::string priority;
    int timeout_ms = 10000;
  };

  ApnsSender(Options options, PKey key) : o_(std::move(options)), key_(std::move(key)) {}

  bool serves(const std::string& platform) const override { return platform == "apn"; }

  SendResult push(const PushNotification& n) override {
    const Json notification = Json::parse(n.body, nullptr, false);
    if (!notification.is_object()) {
      SendResult r;
      r.outcome = SendOutcome::kPermanent;
      r.error_message = "the notification is not a JSON object";
      return r;
    }
    const std::string jwt = providerToken(false);
    if (jwt.empty()) return transient("apns: signing the provider token failed");
    OrderedJson payload;
    OrderedJson alert = OrderedJson::object();
    if (notification.contains("message") && notification["message"].is_string())
      alert["body"] = notification["message"];
    payload["aps"] = {{"alert", alert}, {"sound", "default"}};
    const OrderedJson data = dataFields(notification);
    for (const auto& [key, value] : data.items()) payload[key] = value;
    std::vector<std::pair<std::string, std::string>> headers = {
        {"authorization", "bearer " + jwt},
        {"apns-topic", o_.topic},
        {"apns-push-type", o_.push_type},
        {"apns-priority", o_.priority},
        {"content-type", "application/json"}};
    // APNs stores a notification for an offline device until apns-expiration (0: not at all).
    if (n.now_or_never)
      headers.emplace_back("apns-expiration", "0");
    else if (n.expires_at > 0)
      headers.emplace_back("apns-expiration", std::to_string(n.expires_at));
    if (notification.contains("challenge_sid") && notification["challenge_sid"].is_string())
      headers.emplace_back("apns-collapse-id", notification["challenge_sid"].get<std::string>());
    Answer a = post(o_.base_url + "/3/device/" + urlEncode(n.token), headers,
                    payload.dump(-1, ' ', false, Json::error_handler_t::replace));
    if (a.status == 200) {
      SendResult r;
      r.outcome = SendOutcome::kAccepted;
      r.status = "sent";
      r.provider_message_id = a.apns_id;
      return r;
    }
    std::string reason;
    const Json answer = Json::parse(a.body, nullptr, false);
    if (answer.is_object()) reason = answer.value("reason", std::string());
    if (a.status == 403 && reason == "ExpiredProviderToken") {
      providerToken(true);
      return transient("apns answered HTTP 403 (ExpiredProviderToken)", 403);
    }
    return fromHttp("apns", a.status, a.error, a.not_sent, reason);
  }

 private:
  struct Answer {
    int status = 0;
    std::string body, error, apns_id;
    bool not_sent = false;
  };

  static size_t header(char* data, size_t size, size_t count, void* out) {
    std::string_view line(data, size * count);
    constexpr std::string_view kName = "apns-id:";
    if (line.size() > kName.size()) {
      std::string lower(line.substr(0, kName.size()));
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == kName) {
        std::string_view v = line.substr(kName.size());
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
          v.remove_suffix(1);
        static_cast<Answer*>(out)->apns_id = std::string(v);
      }
    }
    return size * count;
  }

  // One HTTP/2 POST (TLS with ALPN h2, or prior knowledge over cleartext for http:// URLs).
  Answer post(const std::string& url, const std::vector<std::pair<std::string, std::string>>& hdrs,
              const std::string& body) {
    static CurlGlobal global;
    Answer a;
    // One handle per thread: the HTTP/2 connection stays open between notifications.
    thread_local std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(),
                                                                          curl_easy_cleanup);
    if (!curl) {
      a.error = "curl_easy_init failed";
      a.not_sent = true;
      return a;
    }
    CURL* h = curl.get();
    curl_easy_reset(h);
    curl_slist* list = nullptr;
    for (const auto& [name, value] : hdrs)
      list = curl_slist_append(list, (name + ": " + value).c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list,
                                                                            curl_slist_free_all);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(
        h, CURLOPT_HTTP_VERSION,
        startsWith(url, "http://") ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout_ms));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(o_.timeout_ms, 3000)));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, appendText);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &ApnsSender::header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      a.error = curl_easy_strerror(rc);
      a.not_sent = rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
                   rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connected = 0;
        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
        a.not_sent = connected == 0;
      }
      return a;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    a.status = static_cast<int>(status);
    return a;
  }

  // The ES256 provider token, signed again after 50 minutes (Apple refuses tokens older than
  // an hour and more than one new token per 20 minutes).
  std::string providerToken(bool expired) {
    std::lock_guard lock(mu_);
    const std::int64_t now = nowSeconds();
    if (expired && now - token_iat_ >= 20 * 60) token_.clear();
    if (!token_.empty() && now - token_iat_ < 50 * 60) return token_;
    OrderedJson header = {{"alg", "ES256"}, {"kid", o_.key_id}};
    OrderedJson claims = {{"iss", o_.team_id}, {"iat", now}};
    token_ = signJwt(key_.get(), header, claims);
    token_iat_ = now;
    return token_;
  }

  Options o_;
  PKey key_;
  std::mutex mu_;
  std::string token_;
  std::int64_t token_iat_ = 0;
};

// -------------------------------------------------------------------------------- webhook

class PushWebhookSender final : public PushSender {
 public:
  struct Options {
    std::string url;
    std::string method;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string basic_user, basic_password;
    int timeout_ms = 10000;
  };

  explicit PushWebhookSender(Options options) : o_(std::move(options)) {}

  bool serves(const std::string& platform) const override {
    return platform == "fcm" || platform == "apn";
  }

  SendResult push(const PushNotification& n) override {
    HttpRequest req;
    req.method = o_.method;
    req.url = o_.url;
    req.headers = o_.headers;
    req.headers.emplace_back("Idempotency-Key", n.delivery_sid);
    req.body = n.body;
    req.basic_user = o_.basic_user;
    req.basic_password = o_.basic_password;
    req.timeout_ms = o_.timeout_ms;
    req.connect_timeout_ms = std::min(o_.timeout_ms, 3000);
    const HttpResponse resp = httpCall(req);
    if (resp.status >= 200 && resp.status < 300) {
      SendResult r;
      r.outcome = SendOutcome::kAccepted;
      r.status = "sent";
      return r;
    }
    return fromHttp("webhook", resp.status, resp.error, resp.not_sent, "");
  }

 private:
  Options o_;
};

}  // namespace

SendResult PushSender::send(const OutgoingMessage& m) {
  PushNotification n;
  n.delivery_sid = m.attempt_sid;
  n.account_sid = m.account_sid;
  n.service_sid = m.service_sid;
  n.platform = m.platform;
  n.token = m.to;
  n.body = m.data;
  n.expires_at = m.expires_at;
  n.now_or_never = m.now_or_never;
  return push(n);
}

Result<std::unique_ptr<PushSender>> makeFcmSender(const ProviderConfig& config) {
  if (auto st = checkPushOnly(config); !st) return fail(st.error());
  const std::string path = setting(config, "credentials_file");
  if (path.empty()) return fail(Error::invalid("credentials_file", "required"));
  auto text = readFile("credentials_file", path);
  if (!text) return fail(text.error());
  const Json creds = Json::parse(*text, nullptr, false);
  if (!creds.is_object())
    return fail(Error::invalid("credentials_file", path + " is not a service account JSON file"));
  const auto field = [&](const char* k) {
    return creds.contains(k) && creds[k].is_string() ? creds[k].get<std::string>() : std::string();
  };
  FcmSender::Options o;
  o.client_email = field("client_email");
  if (o.client_email.empty())
    return fail(Error::invalid("credentials_file", path + " has no client_email"));
  auto key = parsePrivateKey("credentials_file", field("private_key"));
  if (!key) return fail(key.error());
  if (EVP_PKEY_base_id(key->get()) != EVP_PKEY_RSA)
    return fail(Error::invalid("credentials_file", "private_key must be an RSA key"));
  o.token_uri = setting(config, "token_uri", field("token_uri"));
  if (o.token_uri.empty()) o.token_uri = "https://oauth2.googleapis.com/token";
  if (auto st = checkUrl("token_uri", o.token_uri); !st) return fail(st.error());
  o.project_id = setting(config, "project_id", field("project_id"));
  if (o.project_id.empty())
    return fail(Error::invalid("project_id", "required (or project_id in the credentials file)"));
  o.base_url = trimSlash(setting(config, "base_url", "https://fcm.googleapis.com"));
  if (auto st = checkUrl("base_url", o.base_url); !st) return fail(st.error());
  o.scope = setting(config, "scope", "https://www.googleapis.com/auth/firebase.messaging");
  o.timeout_ms = config.timeout_ms;
  return std::make_unique<FcmSender>(std::move(o), std::move(*key));
}

Result<std::unique_ptr<PushSender>> makeApnsSender(const ProviderConfig& config) {
  if (auto st = checkPushOnly(config); !st) return fail(st.error());
  ApnsSender::Options o;
  for (auto [key, field] : {std::pair{"key_id", &o.key_id}, std::pair{"team_id", &o.team_id},
                            std::pair{"topic", &o.topic}}) {
    *field = setting(config, key);
    if (field->empty()) return fail(Error::invalid(key, "required"));
    if (field->find_first_of("\r\n") != std::string::npos)
      return fail(Error::invalid(key, "cannot hold line breaks"));
  }
  const std::string path = setting(config, "key_file");
  if (path.empty()) return fail(Error::invalid("key_file", "required (the .p8 key)"));
  auto text = readFile("key_file", path);
  if (!text) return fail(text.error());
  auto key = parsePrivateKey("key_file", *text);
  if (!key) return fail(key.error());
  if (EVP_PKEY_base_id(key->get()) != EVP_PKEY_EC || EVP_PKEY_bits(key->get()) != 256)
    return fail(Error::invalid("key_file", "must be a P-256 key (the .p8 file from Apple)"));
  o.base_url = trimSlash(setting(config, "base_url", "https://api.push.apple.com"));
  if (auto st = checkUrl("base_url", o.base_url); !st) return fail(st.error());
  o.push_type = setting(config, "push_type", "alert");
  o.priority = setting(config, "priority", "10");
  if (o.priority != "10" && o.priority != "5" && o.priority != "1")
    return fail(Error::invalid("priority", "10, 5 or 1"));
  if (o.push_type.find_first_of("\r\n") != std::string::npos)
    return fail(Error::invalid("push_type", "cannot hold line breaks"));
  o.timeout_ms = config.timeout_ms;
  return std::make_unique<ApnsSender>(std::move(o), std::move(*key));
}

Result<std::unique_ptr<PushSender>> makePushWebhookSender(const ProviderConfig& config) {
  PushWebhookSender::Options o;
  o.url = setting(config, "url");
  if (o.url.empty()) return fail(Error::invalid("url", "required"));
  if (auto st = checkUrl("url", o.url); !st) return fail(st.error());
  o.method = setting(config, "method", "POST");
  std::transform(o.method.begin(), o.method.end(), o.method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (o.method != "POST" && o.method != "PUT") return fail(Error::invalid("method", "POST or PUT"));
  bool has_content_type = false;
  for (const auto& [key, value] : config.settings) {
    if (!startsWith(key, "headers.")) continue;
    const std::string name = key.substr(8);
    const bool bad_name = name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
                            return c == ':' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
                          });
    if (bad_name) return fail(Error::invalid(key, "not a valid header name"));
    if (value.find_first_of("\r\n") != std::string::npos)
      return fail(Error::invalid(key, "header values cannot hold line breaks"));
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "content-type") has_content_type = true;
    o.headers.emplace_back(name, value);
  }
  if (!has_content_type) {
    const std::string content_type = setting(config, "content_type", "application/json");
    if (content_type.find_first_of("\r\n") != std::string::npos)
      return fail(Error::invalid("content_type", "cannot hold line breaks"));
    o.headers.emplace_back("Content-Type", content_type);
  }
  o.headers.emplace_back("Expect", "");
  o.basic_user = setting(config, "basic_user");
  o.basic_password = setting(config, "basic_password");
  if (o.basic_user.empty() && !o.basic_password.empty())
    return fail(Error::invalid("basic_user", "required with basic_password"));
  if (config.timeout_ms <= 0) return fail(Error::invalid("timeout_ms", "must be positive"));
  o.timeout_ms = config.timeout_ms;
  return std::make_unique<PushWebhookSender>(std::move(o));
}

}  // namespace verifyd
