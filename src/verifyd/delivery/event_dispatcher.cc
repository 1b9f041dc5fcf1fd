#include "verifyd/delivery/event_dispatcher.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "verifyd/delivery/http_client.h"

namespace verifyd {

using Json = nlohmann::json;

namespace {

constexpr const char* kQueued = "queued";
constexpr const char* kDelivered = "delivered";
constexpr const char* kFailed = "failed";

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

}  // namespace

EventDispatcher::EventDispatcher(FactorStore& factors, AccountStore& accounts,
                                 const Keyring& keyring, Random& random,
                                 EventDispatchOptions options, std::vector<PushRoute> push)
    : factors_(factors),
      accounts_(accounts),
      keyring_(keyring),
      random_(random),
      options_(std::move(options)),
      push_(std::move(push)),
      lease_token_(hex(random_.bytes(8))),
      workers_(
          LeasedWorkers<WebhookDelivery>::Hooks{
              [this](int want) {
                auto got = factors_.claimWebhookDeliveries(unixMs(), options_.lease_ms, want,
                                                           lease_token_);
                return got ? std::move(*got) : std::vector<WebhookDelivery>();
              },
              [this](WebhookDelivery d) { process(std::move(d)); },
              // Claimed but never started: hand them back at once rather than after their lease.
              [this](WebhookDelivery& d) {
                d.status = kQueued;
                d.next_try_ms = 0;
                d.lease_token = lease_token_;
                (void)factors_.finishWebhookDelivery(d);
              }},
          options_.workers, options_.poll_ms) {}

EventDispatcher::~EventDispatcher() { stop(); }

std::string EventDispatcher::signedUrl(std::string_view url, std::string_view body) {
  std::string base(url.substr(0, url.find('#')));
  base += base.find('?') == std::string::npos ? "?" : "&";
  return base + "bodySHA256=" + hex(sha256(body));
}

std::string EventDispatcher::signature(std::string_view auth_token, std::string_view url) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), auth_token.data(), static_cast<int>(auth_token.size()),
       reinterpret_cast<const unsigned char*>(url.data()), url.size(), mac, &len);
  return base64(std::string_view(reinterpret_cast<char*>(mac), len));
}

void EventDispatcher::start() { workers_.start(); }

void EventDispatcher::stop() { workers_.stop(); }

void EventDispatcher::nudge() { workers_.nudge(); }

void EventDispatcher::process(WebhookDelivery d) {
  std::string error;
  bool retryable = true;
  const bool delivered =
      d.kind == "push" ? sendPush(d, error, retryable) : sendWebhook(d, error, retryable);
  d.tries += 1;
  d.lease_token = lease_token_;
  d.date_updated = unixMs() / 1000;
  if (delivered) {
    d.status = kDelivered;
    d.error.clear();
    d.next_try_ms = 0;
  } else if (retryable && d.tries < std::max(1, options_.max_tries)) {
    d.status = kQueued;
    d.error = error;
    d.next_try_ms =
        unixMs() + backoffMs(d.tries, options_.retry_initial_ms, options_.retry_max_ms, random_);
  } else {
    d.status = kFailed;
    d.error = error;
    d.next_try_ms = 0;
  }
  (void)factors_.finishWebhookDelivery(d);
}

bool EventDispatcher::sendWebhook(const WebhookDelivery& d, std::string& error, bool& retryable) {
  auto account = accounts_.getAccount(d.account_sid);
  if (!account) {
    error = "the account could not be read: " + account.error().message;
    return false;  // storage trouble: retry
  }
  if (!*account) {
    error = "account " + d.account_sid + " does not exist";
    retryable = false;
    return false;
  }
  auto token = keyring_.open((*account)->auth_token_sealed);
  if (!token) {
    error = "the account's auth token cannot be read with this server's key";
    retryable = false;
    return false;
  }
  if (d.url.rfind("http://", 0) != 0 && d.url.rfind("https://", 0) != 0) {
    error = "the webhook URL is not an http:// or https:// URL";
    retryable = false;
    return false;
  }
  HttpRequest req;
  req.method = "POST";
  req.url = signedUrl(d.url, d.body);
  req.body = d.body;
  req.headers = {{"Content-Type", "application/json"},
                 {"X-Twilio-Signature", signature(*token, req.url)},
                 {"I-Twilio-Idempotency-Token", d.sid},
                 {"User-Agent", options_.user_agent},
                 {"Expect", ""}};
  req.timeout_ms = std::max(1, options_.timeout_ms);
  req.connect_timeout_ms = std::min(req.timeout_ms, 3000);
  const HttpResponse resp = httpCall(req);
  if (resp.status >= 200 && resp.status < 300) return true;
  error = resp.status == 0 ? "webhook request failed: " + resp.error
                           : "webhook answered HTTP " + std::to_string(resp.status);
  return false;
}

bool EventDispatcher::sendPush(const WebhookDelivery& d, std::string& error, bool& retryable) {
  const Json body = Json::parse(d.body, nullptr, false);
  if (!body.is_object()) {
    error = "the notification is not a JSON object";
    retryable = false;
    return false;
  }
  // The notification as an OutgoingMessage of channel "push", for the providers' Sender::send.
  OutgoingMessage n;
  n.attempt_sid = d.sid;
  n.account_sid = d.account_sid;
  n.service_sid = d.service_sid;
  n.channel = "push";
  n.platform = body.value("platform", std::string());
  n.to = body.value("token", std::string());
  n.data = d.body;
  if (n.platform == "apns") n.platform = "apn";
  if (n.to.empty() || (n.platform != "fcm" && n.platform != "apn")) {
    error = "the factor has no notification platform and token";
    retryable = false;
    return false;
  }
  // `ttl` (seconds from the delivery's creation; 0: one immediate attempt): a notification
  // past it is stale, and no provider is asked to store it longer.
  if (body.contains("ttl") && body["ttl"].is_number_integer()) {
    const std::int64_t ttl = std::max<std::int64_t>(0, body["ttl"].get<std::int64_t>());
    n.now_or_never = ttl == 0;
    n.expires_at = static_cast<long long>(d.date_created) + ttl;
    const bool stale = n.now_or_never ? d.tries > 0 : unixMs() / 1000 >= n.expires_at;
    if (stale) {
      error = "the notification's ttl ran out before a provider took it";
      retryable = false;
      return false;
    }
  }
  // Every provider that reaches the platform, in the config file's order: the first that takes
  // the notification ends the try; one that fails hands over to the next at once.
  bool any_provider = false;
  retryable = false;
  for (const auto& route : push_) {
    if (!route.sender->serves(n.platform)) continue;
    any_provider = true;
    SendResult r = route.sender->send(n);
    if (r.outcome == SendOutcome::kAccepted) return true;
    if (!error.empty()) error += "; ";
    error += route.name + ": " +
             (r.error_message.empty() ? "the provider did not take it" : r.error_message);
    if (r.outcome != SendOutcome::kPermanent) retryable = true;
  }
  if (!any_provider) error = "no push provider is configured for platform " + n.platform;
  if (n.now_or_never) retryable = false;
  return false;
}

}  // namespace verifyd
