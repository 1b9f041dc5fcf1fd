#include "verifyd/delivery/delivery_service.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

#include "verifyd/common/sid.h"
#include "verifyd/delivery/providers.h"
#include "verifyd/delivery/templates.h"

namespace verifyd {

using json = nlohmann::json;

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

Result<std::unique_ptr<Sender>> makeSender(const ProviderConfig& c) {
  if (c.type == "kannel") return makeKannelSender(c);
  if (c.type == "smtp") return makeSmtpSender(c);
  if (c.type == "twilio") return makeTwilioSender(c);
  if (c.type == "webhook") return makeWebhookSender(c);
  return fail(
      Error::invalid("provider.type", "provider '" + c.name + "': unknown type '" + c.type +
                                          "' (kannel, smtp, twilio, webhook, fcm or apns)"));
}

bool servesPush(const ProviderConfig& c) {
  return std::find(c.channels.begin(), c.channels.end(), "push") != c.channels.end();
}

// Push providers: fcm and apns serve only "push"; a webhook provider may serve it too.
Result<std::unique_ptr<PushSender>> makePushSender(const ProviderConfig& c) {
  if (c.type == "fcm") return makeFcmSender(c);
  if (c.type == "apns") return makeApnsSender(c);
  if (c.type == "webhook") return makePushWebhookSender(c);
  return fail(Error::invalid("provider.channels", "provider '" + c.name + "' of type '" + c.type +
                                                      "' cannot serve \"push\" (fcm, apns or "
                                                      "webhook can)"));
}

// The digits of a code one by one ("1, 2, 3"), for templates spoken by a call.
std::string spelled(std::string_view code) {
  std::string out;
  for (char c : code) {
    if (!out.empty()) out += ", ";
    out.push_back(c);
  }
  return out;
}

}  // namespace

DeliveryService::DeliveryService(Store& store, const Keyring& keyring, const PhoneNumbers& phones,
                                 Random& random, DeliveryOptions options)
    : store_(store),
      keyring_(keyring),
      phones_(phones),
      random_(random),
      options_(std::move(options)),
      lease_token_(hex(random_.bytes(8))) {}

Result<std::unique_ptr<DeliveryService>> DeliveryService::create(
    Store& store, const Keyring& keyring, const PhoneNumbers& phones, Random& random,
    DeliveryOptions options, FactorStore* factors, AccountStore* accounts) {
  std::unique_ptr<DeliveryService> d(
      new DeliveryService(store, keyring, phones, random, std::move(options)));
  std::vector<PushRoute> push_routes;
  for (const auto& c : d->options_.providers) {
    for (const auto& other : d->providers_)
      if (other.config.name == c.name)
        return fail(Error::invalid("provider.name", "two providers are named '" + c.name + "'"));
    Provider p{c, nullptr, nullptr};
    if (c.type != "fcm" && c.type != "apns") {
      auto sender = makeSender(c);
      if (!sender) return fail(sender.error());
      p.sender = std::move(*sender);
    }
    if (servesPush(c)) {
      auto push = makePushSender(c);
      if (!push) return fail(push.error());
      p.push = std::move(*push);
    } else if (!p.sender) {
      return fail(Error::invalid("provider.channels", "provider '" + c.name + "' of type '" +
                                                          c.type + "' serves only \"push\""));
    }
    d->providers_.push_back(std::move(p));
  }
  for (const auto& p : d->providers_)
    if (p.push) push_routes.push_back(PushRoute{p.config.name, p.push.get()});
  if (factors) {
    const DeliveryOptions& o = d->options_;
    EventDispatchOptions e;
    e.workers = o.event_workers;
    e.max_tries = o.event_max_tries;
    e.retry_initial_ms = o.event_retry_initial_ms;
    e.retry_max_ms = o.event_retry_max_ms;
    e.lease_ms = o.lease_ms;
    e.poll_ms = o.poll_ms;
    e.timeout_ms = o.event_timeout_ms;
    d->events_ = std::make_unique<EventDispatcher>(*factors, accounts ? *accounts : store, keyring,
                                                   random, std::move(e), std::move(push_routes));
  }
  return d;
}

DeliveryService::~DeliveryService() { stop(); }

void DeliveryService::eventsQueued() {
  if (events_) events_->nudge();
}

void DeliveryService::start() {
  // Webhook events need no provider: their dispatcher runs whenever there is a factor store.
  if (events_) events_->start();
  // Verification messages: every message stays in the dev outbox without a provider for them.
  bool any = false;
  for (const auto& p : providers_)
    for (const auto& ch : p.config.channels)
      if (ch != "push" && p.sender) any = true;
  if (!any) return;
  messages_ = std::make_unique<LeasedWorkers<DeliveryAttempt>>(
      LeasedWorkers<DeliveryAttempt>::Hooks{
          [this](int want) {
            // A cheap read first, so that idle dispatchers do not write.
            const std::int64_t now = unixMs();
            std::vector<DeliveryAttempt> claimed;
            auto due = store_.anyAttemptDue(now);
            if (due && *due) {
              auto got = store_.claimAttempts(now, options_.lease_ms, want, lease_token_);
              if (got) claimed = std::move(*got);
            }
            return claimed;
          },
          [this](DeliveryAttempt a) { process(std::move(a)); },
          // Not started: back to queued now, so that it is not flagged outcome unknown when
          // its lease runs out after a restart.
          [this](DeliveryAttempt& a) {
            a.message_status = message_status::kQueued;
            a.next_try_ms = 0;
            (void)store_.finishTry(a);
          }},
      options_.workers, options_.poll_ms);
  messages_->start();
}

void DeliveryService::stop() {
  if (events_) events_->stop();
  if (messages_) messages_->stop();
}

void DeliveryService::queued() {
  if (messages_) messages_->nudge();
}

std::vector<const DeliveryService::Provider*> DeliveryService::route(
    const DeliveryAttempt& a, const std::string& messaging_service_sid) const {
  std::vector<const Provider*> first, rest;
  for (const auto& p : providers_) {
    const auto& c = p.config;
    if (!p.sender) continue;  // push only
    if (std::find(c.channels.begin(), c.channels.end(), a.channel) == c.channels.end()) continue;
    if (!c.countries.empty() &&
        std::find(c.countries.begin(), c.countries.end(), a.country) == c.countries.end())
      continue;
    auto mg = c.settings.find("messaging_service_sid");
    const bool preferred = !messaging_service_sid.empty() && mg != c.settings.end() &&
                           mg->second == messaging_service_sid;
    (preferred ? first : rest).push_back(&p);
  }
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

void DeliveryService::process(DeliveryAttempt a) {
  auto finish = [&](std::string status) {
    a.message_status = std::move(status);
    a.date_updated = unixMs() / 1000;
    (void)store_.finishTry(a);
  };
  OutgoingMessage m;
  {
    auto opened = keyring_.open(a.payload_sealed);
    if (!opened) {
      a.error_code = "30500";
      a.error_message = "the stored message cannot be read with this server's key";
      return finish(message_status::kFailed);
    }
    json p = json::parse(*opened, nullptr, false);
    if (!p.is_object()) {
      a.error_code = "30500";
      a.error_message = "the stored message is not readable";
      return finish(message_status::kFailed);
    }
    auto get = [&p](const char* k) { return p.value(k, std::string()); };
    m.text = get("text");
    m.speech = get("speech");
    m.speech_language = get("speech_language");
    m.subject = get("subject");
    m.html = get("html");
    m.from = get("from");
    m.from_name = get("from_name");
    m.code = get("code");
    m.friendly_name = get("friendly_name");
  }
  m.attempt_sid = a.sid;
  m.account_sid = a.account_sid;
  m.service_sid = a.service_sid;
  m.verification_sid = a.verification_sid;
  m.channel = a.channel;
  m.to = a.to;
  m.locale = a.locale;
  if (a.channel == "sms" || a.channel == "whatsapp") {
    // The service's Messaging Configuration for the country (or "all") picks the route.
    for (const char* country : {a.country.c_str(), "all"}) {
      auto mc = store_.getMessagingConfig(a.service_sid, country);
      if (mc && *mc) {
        m.messaging_service_sid = (*mc)->messaging_service_sid;
        break;
      }
    }
  }
  auto providers = route(a, m.messaging_service_sid);
  if (providers.empty()) {
    a.error_code = "30008";
    a.error_message = "no provider is configured for " + a.channel + " to this destination";
    return finish(message_status::kFailed);
  }
  std::size_t pos = 0;
  while (pos < providers.size() && providers[pos]->config.name != a.provider) ++pos;
  if (pos == providers.size()) {
    pos = 0;
    a.provider_tries = 0;
  }
  const Provider& provider = *providers[pos];
  m.status_callback = options_.public_url + "/callbacks/v1/" + provider.config.name + "/" + a.sid +
                      "?t=" + callbackToken(a.sid);
  SendResult r = provider.sender->send(m);
  a.provider = provider.config.name;
  a.tries += 1;
  a.provider_tries += 1;
  a.lease_token = lease_token_;
  if (r.outcome == SendOutcome::kAccepted) {
    a.provider_message_id = r.provider_message_id;
    a.error_code.clear();
    a.error_message.clear();
    // Accepted is never due again, even when the provider calls it "queued" on its side.
    a.next_try_ms = std::numeric_limits<std::int64_t>::max();
    return finish(r.status.empty() ? message_status::kSent : r.status);
  }
  a.error_code = r.error_code ? std::to_string(r.error_code) : "30003";
  a.error_message =
      r.error_message.empty() ? "the provider did not take the message" : r.error_message;
  if (r.outcome == SendOutcome::kUnknown) a.outcome_unknown = true;
  const bool retry_here =
      r.outcome != SendOutcome::kPermanent && a.provider_tries < std::max(1, options_.max_tries);
  if (retry_here) {
    a.next_try_ms = unixMs() + backoffMs(a.provider_tries, options_.retry_initial_ms,
                                         options_.retry_max_ms, random_);
    return finish(message_status::kQueued);
  }
  if (pos + 1 < providers.size()) {
    // Fail over: the next provider, at once.
    a.provider = providers[pos + 1]->config.name;
    a.provider_tries = 0;
    a.next_try_ms = 0;
    return finish(message_status::kQueued);
  }
  finish(message_status::kFailed);
}

// The webhook form of a receipt: what verifyd documents for gateways that call back.
Result<DeliveryReceipt> Sender::readReceipt(
    const std::map<std::string, std::string>& fields) const {
  auto field = [&fields](const char* k) {
    auto it = fields.find(k);
    return it == fields.end() ? std::string() : it->second;
  };
  return DeliveryReceipt{field("status"), field("error_code"), field("error_message")};
}

std::string DeliveryService::callbackToken(std::string_view attempt_sid) const {
  return hex(keyring_.mac("delivery-callback", attempt_sid)).substr(0, 32);
}

Status DeliveryService::receipt(const Receipt& r) {
  if (!keyring_.equal(callbackToken(r.attempt_sid), r.token)) return fail(Error::notFound());
  const Provider* provider = nullptr;
  for (const auto& p : providers_)
    if (p.config.name == r.provider) provider = &p;
  // Only message providers are given callback URLs.
  if (!provider || !provider->sender) return fail(Error::notFound());
  auto read = provider->sender->readReceipt(r.fields);
  if (!read) return fail(read.error());
  const std::string& status = read->status;
  static const std::vector<std::string> kKnown = {"queued", "sent", "delivered", "undelivered",
                                                  "failed"};
  if (std::find(kKnown.begin(), kKnown.end(), status) == kKnown.end())
    return fail(Error::invalid("status", "unknown delivery status"));
  // "queued" at the provider is what its acceptance already recorded: nothing to move.
  if (status == message_status::kQueued) return {};
  return store_.applyReceipt(r.attempt_sid, status, read->error_code, read->error_message,
                             unixMs() / 1000);
}

bool DeliveryService::dispatches(std::string_view channel) const {
  for (const auto& p : providers_)
    if (p.sender && channel != "push" &&
        std::find(p.config.channels.begin(), p.config.channels.end(), channel) !=
            p.config.channels.end())
      return true;
  return false;
}

Result<ComposedMessage> DeliveryService::compose(const ComposeRequest& r) const {
  ComposedMessage out;
  if (r.channel != "email") {
    std::string region = phones_.mainRegionOf(r.to);
    out.country = region == "ZZ" ? "" : region;
  }
  if (!r.locale.empty()) {
    auto canonical = canonicalLocale(r.locale);
    if (!canonical) return fail(Error::notFound("Locale " + r.locale));
    out.locale = *canonical;
  } else {
    out.locale = out.country.empty() ? "en" : localeForRegion(out.country);
  }
  MessageVars vars;
  vars.locale = out.locale;
  vars.friendly_name = r.friendly_name;
  vars.code = r.code;
  vars.do_not_share = r.do_not_share;
  vars.amount = r.amount;
  vars.payee = r.payee;
  vars.app_hash = r.app_hash;
  vars.ttl_minutes = r.ttl_minutes;
  json p;
  p["code"] = r.code;
  p["friendly_name"] = r.friendly_name;
  // Templates apply to sms and voice; Twilio uses its default text for the other channels.
  const MessageTemplate* tpl = nullptr;
  if (!r.template_sid.empty()) {
    tpl = findTemplate(r.template_sid);
    if (!tpl) return fail(Error::invalid("TemplateSid", "no template " + r.template_sid));
  }
  if (r.channel == "sms" || r.channel == "whatsapp") {
    std::string text;
    if (tpl && r.channel == "sms") {
      auto rendered = renderTemplate(*tpl, vars, r.template_substitutions);
      if (!rendered) return fail(rendered.error());
      text = *rendered;
      if (!r.app_hash.empty()) text = "<#> " + text + "\n" + r.app_hash;
    } else {
      text = smsText(vars);
    }
    p["text"] = text;
    out.preview = text;
  } else if (r.channel == "call") {
    Speech speech = callSpeech(vars);
    if (tpl &&
        std::find(tpl->channels.begin(), tpl->channels.end(), "voice") != tpl->channels.end()) {
      MessageVars spoken = vars;
      spoken.code = spelled(r.code);
      auto rendered = renderTemplate(*tpl, spoken, r.template_substitutions);
      if (!rendered) return fail(rendered.error());
      speech.text = *rendered + " " + *rendered;
    }
    p["text"] = speech.text;
    p["speech"] = speech.text;
    p["speech_language"] = speech.language;
    out.preview = speech.text;
  } else {
    EmailContent email = emailContent(vars, r.email_substitutions);
    p["subject"] = email.subject;
    p["text"] = email.text;
    p["html"] = email.html;
    p["from"] = r.email_from;
    p["from_name"] = r.email_from_name;
    out.preview = email.subject + "\n\n" + email.text;
  }
  out.payload = p.dump();
  return out;
}

}  // namespace verifyd
