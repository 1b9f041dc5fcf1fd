#include "verifyd/core/verifier.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <future>
#include <memory>

#include "verifyd/common/sid.h"
#include "verifyd/core/code.h"
#include "verifyd/core/protection.h"

namespace verifyd {

namespace {

constexpr std::array<std::string_view, 4> kChannels = {"sms", "call", "email", "whatsapp"};

bool isEmail(std::string_view s) {
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at != s.rfind('@') || s.size() > 254) return false;
  auto domain = s.substr(at + 1);
  auto dot = domain.find('.');
  if (dot == std::string_view::npos || dot == 0 || domain.back() == '.') return false;
  return std::none_of(s.begin(), s.end(),
                      [](unsigned char c) { return std::isspace(c) || c < 32; });
}

bool isCustomCode(std::string_view s) {
  return s.size() >= 4 && s.size() <= 10 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c); });
}

}  // namespace

Verifier::Verifier(Store& store, const Keyring& keyring, const PhoneNumbers& phones, Clock& clock,
                   Random& random, VerifierOptions options, MessageSink sink, Executor executor,
                   Delivery* delivery, Counters* counters)
    : store_(store),
      keyring_(keyring),
      phones_(phones),
      clock_(clock),
      random_(random),
      options_(options),
      sink_(std::move(sink)),
      executor_(executor ? std::move(executor) : [](std::function<void()> fn) { fn(); }),
      delivery_(delivery),
      counters_(counters ? *counters : own_counters_) {}

namespace {
template <class T>
Result<T> await(const std::function<void(Done<T>)>& start) {
  std::promise<Result<T>> promise;
  auto future = promise.get_future();
  start([&promise](Result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}
}  // namespace

Result<Verification> Verifier::start(const std::string& account_sid, const std::string& service_sid,
                                     const StartParams& params) {
  return await<Verification>(
      [&](Done<Verification> done) { startAsync(account_sid, service_sid, params, done); });
}

Result<Verification> Verifier::check(const std::string& account_sid, const std::string& service_sid,
                                     const CheckParams& params) {
  return await<Verification>(
      [&](Done<Verification> done) { checkAsync(account_sid, service_sid, params, done); });
}

Result<Verification> Verifier::update(const std::string& account_sid,
                                      const std::string& service_sid, const std::string& sid_or_to,
                                      const std::string& new_status) {
  return await<Verification>([&](Done<Verification> done) {
    updateAsync(account_sid, service_sid, sid_or_to, new_status, done);
  });
}

Result<Service> Verifier::service(const std::string& account_sid, const std::string& service_sid) {
  auto found = store_.getService(account_sid, service_sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

bool Verifier::live(const Verification& v, UnixTime now) const { return now < v.expires_at; }

Result<ComposedMessage> Verifier::compose(const ComposeRequest& r) const {
  if (delivery_) return delivery_->compose(r);
  ServiceSettings s;
  s.do_not_share_warning_enabled = r.do_not_share;
  ComposedMessage m;
  m.locale = "en";
  m.preview = renderMessage(s, r.friendly_name, r.code);
  return m;
}

VerificationKey Verifier::keyFor(const std::string& service_sid,
                                 const std::string& sid_or_to) const {
  if (isSid(sid_or_to, "VE")) return VerificationKey{service_sid, sid_or_to, {}};
  return VerificationKey{service_sid, {}, sid_or_to};
}

void Verifier::startAsync(const std::string& account_sid, const std::string& service_sid,
                          const StartParams& p, Done<Verification> done) {
  auto error = [&](Error e) { done(fail(std::move(e))); };
  auto svc = service(account_sid, service_sid);
  if (!svc) return error(svc.error());
  const ServiceSettings settings = svc->settings;

  if (p.to.empty()) return error(Error::missing("To"));
  if (p.channel.empty()) return error(Error::missing("Channel"));
  if (std::find(kChannels.begin(), kChannels.end(), p.channel) == kChannels.end())
    return error(Error::invalid("Channel", "'" + p.channel +
                                               "' is not supported; use sms, call, email or "
                                               "whatsapp"));
  if (p.channel == "email") {
    if (!isEmail(p.to)) return error(Error::invalid("To", "not an e-mail address"));
  } else if (!phones_.isValidE164(p.to)) {
    return error(Error::invalid("To", "not a valid phone number in E.164 format"));
  }
  // Offline lookup: the line type libphonenumber's metadata gives the number.
  std::optional<std::string> lookup_type;
  if (p.channel != "email" && (settings.lookup_enabled || settings.skip_sms_to_landlines)) {
    std::string type = phones_.describe(p.to, "").line_type;
    if (settings.skip_sms_to_landlines && p.channel == "sms" && type == "landline")
      return error(Error::of(ErrorKind::kSmsToLandline,
                             "SMS is not supported by landline phone number " + p.to));
    if (settings.lookup_enabled) lookup_type = type;
  }
  if (geoControlled(p.channel) && p.risk_check) {
    // Geo permissions, before anything is stored; safe-listed numbers are exempt.
    auto rules = store_.geoPermissions(account_sid);
    if (!rules) return error(rules.error());
    // Resolving the region costs a metadata search: only when there is a rule to apply.
    const bool any_rule = !rules->empty() || !options_.geo_blocked.empty();
    const std::string region = any_rule ? phones_.regionOf(p.to) : std::string();
    if (any_rule && !geoAllowed(*rules, options_.geo_blocked, p.channel, region)) {
      auto safe = store_.getSafeNumber(account_sid, p.to);
      if (!safe) return error(safe.error());
      if (!*safe)
        return error(Error::of(ErrorKind::kGeoBlocked, "Verification to " + region +
                                                           " is blocked by the geo "
                                                           "permissions of this account (" +
                                                           p.channel + ")"));
    }
  }
  if (p.custom_code) {
    if (!settings.custom_code_enabled)
      return error(Error::of(ErrorKind::kFeatureNotSupported,
                             "Service does not support this feature: CustomCode needs "
                             "custom_code_enabled on the service"));
    if (!isCustomCode(*p.custom_code))
      return error(Error::invalid("CustomCode", "4 to 10 letters or digits"));
  }

  if (settings.psd2_enabled) {
    if (p.channel == "call")
      return error(Error::of(ErrorKind::kPsd2CallNotAllowed,
                             "The call channel is not allowed for PSD2 verifications"));
    if (!p.amount || p.amount->empty() || !p.payee || p.payee->empty())
      return error(Error::of(ErrorKind::kPsd2ParamsRequired,
                             "Amount and Payee are required for PSD2 verifications"));
  }

  const UnixTime now = clock_.now();
  const std::string friendly = p.custom_friendly_name.value_or(settings.friendly_name);
  ComposeRequest request;
  request.channel = p.channel;
  request.to = p.to;
  request.locale = p.locale;
  request.friendly_name = friendly;
  request.do_not_share = settings.do_not_share_warning_enabled;
  if (settings.psd2_enabled) {
    request.amount = p.amount;
    request.payee = p.payee;
  }
  request.app_hash = p.app_hash;
  request.template_sid =
      p.template_sid.empty() ? settings.default_template_sid.value_or("") : p.template_sid;
  request.template_substitutions = p.template_substitutions;
  request.email_from = p.email_from;
  request.email_from_name = p.email_from_name;
  request.email_substitutions = p.email_substitutions;
  request.ttl_minutes = std::max(1, options_.code_ttl_seconds / 60);
  const bool dispatch = delivery_ && delivery_->dispatches(p.channel);
  // Everything a new verification needs is prepared here, on the request's thread: the store
  // runs `decide` on its single writer, which should only choose and write.
  StartWrite fresh;
  fresh.is_new = true;
  std::string fresh_code;
  {
    Verification& v = fresh.verification;
    v.sid = makeOrderedSid("VE", now, random_);
    v.service_sid = service_sid;
    v.account_sid = account_sid;
    v.to = p.to;
    v.channel = p.channel;
    v.code_length = settings.code_length;
    if (p.custom_code) {
      fresh_code = *p.custom_code;
    } else {
      v.code_seed = random_.bytes(16);
      fresh_code = deriveCode(keyring_, v.code_seed, v.code_length);
    }
    v.code_hash = hashCode(keyring_, v.sid, fresh_code);
    v.amount = p.amount;
    v.payee = p.payee;
    v.date_created = v.date_updated = now;
    v.expires_at = now + options_.code_ttl_seconds;
  }
  // Fraud Guard watches sms sends, except to safe-listed numbers or with RiskCheck=disable.
  std::optional<FraudCheck> fraud;
  if (p.channel == "sms" && p.risk_check) {
    fraud = fraudPolicy(options_.fraud_guard);
    if (fraud) {
      auto safe = store_.getSafeNumber(account_sid, p.to);
      if (!safe) return error(safe.error());
      if (*safe) {
        fraud.reset();
      } else {
        fraud->account_sid = account_sid;
        fraud->prefix = fraudPrefix(p.to);
        fresh.verification.fraud_prefix = fraud->prefix;
      }
    }
  }
  const SendAttempt attempt{makeOrderedSid("VL", now, random_), p.channel, now};
  // The message, composed now so that a bad Locale or template fails before anything is stored.
  request.code = fresh_code;
  auto composed = compose(request);
  if (!composed) return error(composed.error());
  DeliveryAttempt fresh_attempt;
  fresh_attempt.sid = attempt.attempt_sid;
  fresh_attempt.account_sid = account_sid;
  fresh_attempt.service_sid = service_sid;
  fresh_attempt.channel = p.channel;
  fresh_attempt.to = p.to;
  fresh_attempt.country = composed->country;
  fresh_attempt.locale = composed->locale;
  fresh_attempt.date_created = fresh_attempt.date_updated = now;
  if (dispatch) {
    fresh_attempt.payload_sealed = keyring_.seal(composed->payload);
  } else {
    // Without a provider for the channel the dev outbox is the delivery.
    fresh_attempt.message_status = message_status::kSent;
    fresh_attempt.provider = "dev-outbox";
  }
  std::string fresh_preview = std::move(composed->preview);
  const std::string message_sid =
      options_.dev_outbox ? makeOrderedSid("MM", now, random_) : std::string();

  // `decide` runs later on the store's writer: it owns copies of what it needs.
  auto sent = std::make_shared<std::optional<OutboxMessage>>();
  auto decide = [this, fresh = std::move(fresh), attempt, message_sid, account_sid, service_sid,
                 custom_code = p.custom_code, channel = p.channel, now, sent, request,
                 fresh_attempt = std::move(fresh_attempt), fresh_preview = std::move(fresh_preview),
                 dispatch,
                 fresh_code](const std::optional<Verification>& pending) -> Result<StartWrite> {
    StartWrite w;
    std::string resent_code;
    DeliveryAttempt delivery = fresh_attempt;
    std::string preview = fresh_preview;
    if (pending) {
      // A resend: same verification, same code, one more attempt.
      w.verification = *pending;
      Verification& v = w.verification;
      if (static_cast<int>(v.send_attempts.size()) >= options_.max_send_attempts)
        return fail(Error::of(ErrorKind::kMaxSendAttempts, "Max send attempts reached"));
      if (custom_code) {
        resent_code = *custom_code;
        v.code_seed.clear();
        v.code_hash = hashCode(keyring_, v.sid, resent_code);
      } else if (!v.code_seed.empty()) {
        resent_code = deriveCode(keyring_, v.code_seed, v.code_length);
      } else {
        // The first send carried a custom code, which verifyd cannot read back.
        return fail(Error::missing("CustomCode"));
      }
      v.channel = channel;
      v.date_updated = now;
    } else {
      w = fresh;
    }
    Verification& v = w.verification;
    v.send_attempts.push_back(attempt);
    if (pending) {
      // The resent code differs from the one composed on the request's thread.
      ComposeRequest again = request;
      again.code = resent_code;
      auto composed = compose(again);
      if (!composed) return fail(composed.error());
      preview = std::move(composed->preview);
      if (dispatch) delivery.payload_sealed = keyring_.seal(composed->payload);
    }
    delivery.verification_sid = v.sid;
    delivery.code_length = v.code_length;
    w.attempt = std::move(delivery);
    if (options_.dev_outbox) {
      w.message = OutboxMessage{message_sid,
                                account_sid,
                                service_sid,
                                v.sid,
                                v.to,
                                channel,
                                std::move(preview),
                                now,
                                pending ? resent_code : fresh_code};
    }
    *sent = w.message;
    return w;
  };
  // Programmable rate limits: every bucket of each named limit is charged in the write.
  StartGuards guards;
  std::vector<RateCharge>& charges = guards.charges;
  if (!p.rate_limits.empty()) {
    auto limits = store_.rateLimitsOfService(service_sid);
    if (!limits) return error(limits.error());
    for (const auto& [name, value] : p.rate_limits) {
      bool known = false;  // a limit without buckets limits nothing, but it must exist
      for (const auto& [limit_name, bucket] : *limits) {
        if (limit_name != name) continue;
        known = true;
        if (bucket)
          charges.push_back(RateCharge{bucket->sid, name, value, bucket->max, bucket->interval});
      }
      if (!known) return error(Error::invalid("RateLimits", "no rate limit named '" + name + "'"));
    }
  }
  if (options_.buckets_in_counters && !charges.empty()) {
    // Shared counters (Redis): every bucket of the start at once, all or nothing.
    std::vector<KeyWindow> items;
    for (const auto& c : charges)
      items.push_back(KeyWindow{"bucket:" + c.bucket_sid + ":" + c.key, Window{c.max, c.interval}});
    auto full = counters_.acquireAll(items, now);
    if (!full) return error(full.error());
    if (*full) {
      Error e = Error::of(ErrorKind::kRateLimited, "Too many requests");
      e.param = charges[(*full)->first].rate_limit_name;
      e.retry_after = (*full)->second;
      return error(e);
    }
    charges.clear();
  }
  guards.fraud = fraud;
  guards.max_destination_sends = options_.max_sends_per_destination;
  guards.destination_window = options_.destination_window_seconds;
  guards.max_pending_per_number = options_.max_pending_per_number;
  guards.account_sid = account_sid;
  store_.startAsync(
      service_sid, p.to, now, std::move(guards), std::move(decide),
      [this, sent, lookup_type, dispatch, done = std::move(done)](Result<Verification> r) {
        if (r && dispatch) delivery_->queued();
        executor_([this, sent, lookup_type, done, r = std::move(r)]() mutable {
          if (r) r->lookup_type = lookup_type;
          if (r && *sent && sink_) sink_(**sent);
          done(std::move(r));
        });
      });
}

void Verifier::checkAsync(const std::string& account_sid, const std::string& service_sid,
                          const CheckParams& p, Done<Verification> done) {
  auto error = [&](Error e) { done(fail(std::move(e))); };
  auto svc = service(account_sid, service_sid);
  if (!svc) return error(svc.error());
  if (!p.code) return error(Error::missing("Code"));
  if (p.code->size() < 4 || p.code->size() > 10)
    return error(Error::invalid("Code", "must be 4 to 10 characters"));
  VerificationKey key;
  if (p.verification_sid && !p.verification_sid->empty()) {
    key = VerificationKey{service_sid, *p.verification_sid, {}};
  } else if (p.to && !p.to->empty()) {
    key = VerificationKey{service_sid, {}, *p.to};
  } else {
    return error(Error::missing("To"));
  }

  // PSD2: the check names the amount and payee the code was sent for; others do not match.
  const bool psd2 = svc->settings.psd2_enabled;
  if (psd2 && (!p.amount || p.amount->empty() || !p.payee || p.payee->empty()))
    return error(Error::of(ErrorKind::kPsd2ParamsRequired,
                           "Amount and Payee are required for PSD2 verifications"));
  const UnixTime now = clock_.now();
  auto change = [this, account_sid, code = *p.code, now, psd2, amount = p.amount,
                 payee = p.payee](const Verification& current) -> Result<Verification> {
    if (current.account_sid != account_sid || !live(current, now)) return fail(Error::notFound());
    if (current.status == status::kMaxAttempts)
      return fail(Error::of(ErrorKind::kMaxCheckAttempts, "Max check attempts reached"));
    if (current.status != status::kPending) return fail(Error::notFound());
    Verification v = current;
    v.check_attempts += 1;
    v.date_updated = now;
    const bool code_ok = keyring_.equal(hashCode(keyring_, v.sid, code), v.code_hash);
    if (code_ok && (!psd2 || (amount == v.amount && payee == v.payee))) {
      v.status = status::kApproved;
    } else if (v.check_attempts >= options_.max_check_attempts) {
      v.status = status::kMaxAttempts;
    }
    return v;
  };
  store_.mutateAsync(std::move(key), std::move(change), completeOn(std::move(done)));
}

Result<Verification> Verifier::fetch(const std::string& account_sid, const std::string& service_sid,
                                     const std::string& sid_or_to) {
  auto svc = service(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  auto wait = counters_.acquire("fetch:" + service_sid + "|" + sid_or_to, options_.fetch_limits,
                                clock_.now());
  if (!wait) return fail(wait.error());
  if (*wait) {
    Error e = Error::of(ErrorKind::kRateLimited, "Too many requests");
    e.retry_after = **wait;
    return fail(e);
  }
  auto found = store_.getVerification(keyFor(service_sid, sid_or_to));
  if (!found) return fail(found.error());
  if (!*found || (*found)->account_sid != account_sid || (*found)->status != status::kPending ||
      !live(**found, clock_.now()))
    return fail(Error::notFound());
  if (svc->settings.lookup_enabled && (*found)->channel != "email")
    (*found)->lookup_type = phones_.describe((*found)->to, "").line_type;
  return std::move(**found);
}

void Verifier::updateAsync(const std::string& account_sid, const std::string& service_sid,
                           const std::string& sid_or_to, const std::string& new_status,
                           Done<Verification> done) {
  auto error = [&](Error e) { done(fail(std::move(e))); };
  auto svc = service(account_sid, service_sid);
  if (!svc) return error(svc.error());
  if (new_status.empty()) return error(Error::missing("Status"));
  if (new_status != status::kCanceled && new_status != status::kApproved)
    return error(Error::invalid("Status", "must be canceled or approved"));
  const UnixTime now = clock_.now();
  auto change = [this, account_sid, new_status,
                 now](const Verification& current) -> Result<Verification> {
    if (current.account_sid != account_sid || current.status != status::kPending ||
        !live(current, now))
      return fail(Error::notFound());
    Verification v = current;
    v.status = new_status;
    v.date_updated = now;
    return v;
  };
  store_.mutateAsync(keyFor(service_sid, sid_or_to), std::move(change),
                     completeOn(std::move(done)));
}

Done<Verification> Verifier::completeOn(Done<Verification> done) {
  return [this, done = std::move(done)](Result<Verification> r) {
    executor_([done, r = std::move(r)]() mutable { done(std::move(r)); });
  };
}

}  // namespace verifyd
