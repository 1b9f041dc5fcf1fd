#include "verifyd/core/verifier.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "verifyd/common/sid.h"
#include "verifyd/core/code.h"

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
                   Random& random, VerifierOptions options, MessageSink sink)
    : store_(store),
      keyring_(keyring),
      phones_(phones),
      clock_(clock),
      random_(random),
      options_(options),
      sink_(std::move(sink)) {}

Result<Service> Verifier::service(const std::string& account_sid, const std::string& service_sid) {
  auto found = store_.getService(account_sid, service_sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

bool Verifier::live(const Verification& v, UnixTime now) const { return now < v.expires_at; }

VerificationKey Verifier::keyFor(const std::string& service_sid,
                                 const std::string& sid_or_to) const {
  if (isSid(sid_or_to, "VE")) return VerificationKey{service_sid, sid_or_to, {}};
  return VerificationKey{service_sid, {}, sid_or_to};
}

Result<Verification> Verifier::start(const std::string& account_sid, const std::string& service_sid,
                                     const StartParams& p) {
  auto svc = service(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  const ServiceSettings& settings = svc->settings;

  if (p.to.empty()) return fail(Error::missing("To"));
  if (p.channel.empty()) return fail(Error::missing("Channel"));
  if (std::find(kChannels.begin(), kChannels.end(), p.channel) == kChannels.end())
    return fail(Error::invalid("Channel", "'" + p.channel +
                                              "' is not supported; use sms, call, email or "
                                              "whatsapp"));
  if (p.channel == "email") {
    if (!isEmail(p.to)) return fail(Error::invalid("To", "not an e-mail address"));
  } else if (!phones_.isValidE164(p.to)) {
    return fail(Error::invalid("To", "not a valid phone number in E.164 format"));
  }
  if (p.custom_code) {
    if (!settings.custom_code_enabled)
      return fail(Error::of(ErrorKind::kFeatureNotSupported,
                            "Service does not support this feature: CustomCode needs "
                            "custom_code_enabled on the service"));
    if (!isCustomCode(*p.custom_code))
      return fail(Error::invalid("CustomCode", "4 to 10 letters or digits"));
  }

  const UnixTime now = clock_.now();
  const std::string friendly = p.custom_friendly_name.value_or(settings.friendly_name);
  // Everything a new verification needs is prepared here, on the request's thread: the store
  // runs `decide` on its single writer, which should only choose and write.
  StartWrite fresh;
  fresh.is_new = true;
  std::string fresh_code;
  {
    Verification& v = fresh.verification;
    v.sid = makeSid("VE", random_);
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
  const SendAttempt attempt{makeSid("VL", random_), p.channel, now};
  const std::string message_sid = options_.dev_outbox ? makeSid("MM", random_) : std::string();

  std::optional<OutboxMessage> sent;
  auto decide = [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
    StartWrite w;
    std::string resent_code;
    if (pending) {
      // A resend: same verification, same code, one more attempt.
      w.verification = *pending;
      Verification& v = w.verification;
      if (static_cast<int>(v.send_attempts.size()) >= options_.max_send_attempts)
        return fail(Error::of(ErrorKind::kMaxSendAttempts, "Max send attempts reached"));
      if (p.custom_code) {
        resent_code = *p.custom_code;
        v.code_seed.clear();
        v.code_hash = hashCode(keyring_, v.sid, resent_code);
      } else if (!v.code_seed.empty()) {
        resent_code = deriveCode(keyring_, v.code_seed, v.code_length);
      } else {
        // The first send carried a custom code, which verifyd cannot read back.
        return fail(Error::missing("CustomCode"));
      }
      v.channel = p.channel;
      v.date_updated = now;
    } else {
      w = fresh;
    }
    Verification& v = w.verification;
    v.send_attempts.push_back(attempt);
    if (options_.dev_outbox) {
      w.message =
          OutboxMessage{message_sid,
                        account_sid,
                        service_sid,
                        v.sid,
                        v.to,
                        p.channel,
                        renderMessage(settings, friendly, pending ? resent_code : fresh_code),
                        now};
    }
    sent = w.message;
    return w;
  };
  auto result = store_.start(service_sid, p.to, now, decide);
  if (result && sent && sink_) sink_(*sent);
  return result;
}

Result<Verification> Verifier::check(const std::string& account_sid, const std::string& service_sid,
                                     const CheckParams& p) {
  auto svc = service(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  if (!p.code) return fail(Error::missing("Code"));
  if (p.code->size() < 4 || p.code->size() > 10)
    return fail(Error::invalid("Code", "must be 4 to 10 characters"));
  VerificationKey key;
  if (p.verification_sid && !p.verification_sid->empty()) {
    key = VerificationKey{service_sid, *p.verification_sid, {}};
  } else if (p.to && !p.to->empty()) {
    key = VerificationKey{service_sid, {}, *p.to};
  } else {
    return fail(Error::missing("To"));
  }

  const UnixTime now = clock_.now();
  return store_.mutate(key, [&](const Verification& current) -> Result<Verification> {
    if (current.account_sid != account_sid || !live(current, now)) return fail(Error::notFound());
    if (current.status == status::kMaxAttempts)
      return fail(Error::of(ErrorKind::kMaxCheckAttempts, "Max check attempts reached"));
    if (current.status != status::kPending) return fail(Error::notFound());
    Verification v = current;
    v.check_attempts += 1;
    v.date_updated = now;
    if (keyring_.equal(hashCode(keyring_, v.sid, *p.code), v.code_hash)) {
      v.status = status::kApproved;
    } else if (v.check_attempts >= options_.max_check_attempts) {
      v.status = status::kMaxAttempts;
    }
    return v;
  });
}

Result<Verification> Verifier::fetch(const std::string& account_sid, const std::string& service_sid,
                                     const std::string& sid_or_to) {
  auto svc = service(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  auto found = store_.getVerification(keyFor(service_sid, sid_or_to));
  if (!found) return fail(found.error());
  if (!*found || (*found)->account_sid != account_sid || (*found)->status != status::kPending ||
      !live(**found, clock_.now()))
    return fail(Error::notFound());
  return std::move(**found);
}

Result<Verification> Verifier::update(const std::string& account_sid,
                                      const std::string& service_sid, const std::string& sid_or_to,
                                      const std::string& new_status) {
  auto svc = service(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  if (new_status.empty()) return fail(Error::missing("Status"));
  if (new_status != status::kCanceled && new_status != status::kApproved)
    return fail(Error::invalid("Status", "must be canceled or approved"));
  const UnixTime now = clock_.now();
  return store_.mutate(keyFor(service_sid, sid_or_to),
                       [&](const Verification& current) -> Result<Verification> {
                         if (current.account_sid != account_sid ||
                             current.status != status::kPending || !live(current, now))
                           return fail(Error::notFound());
                         Verification v = current;
                         v.status = new_status;
                         v.date_updated = now;
                         return v;
                       });
}

}  // namespace verifyd
