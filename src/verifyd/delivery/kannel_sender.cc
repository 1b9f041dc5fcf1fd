// type = "kannel": SMS through Kannel's sendsms HTTP interface (GET), DLRs back to
// message.status_callback. See /work/shared/notes/KANNEL_SMTP.md for Kannel's behaviour.
#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verifyd/delivery/http_client.h"
#include "verifyd/delivery/providers.h"

namespace verifyd {
namespace {

// Decodes one UTF-8 sequence at s[i], advancing i; returns -1 for invalid input.
long nextCodePoint(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int extra = 0;
  long cp = 0;
  if (c < 0x80) {
    ++i;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    extra = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    return -1;
  }
  if (i + extra >= s.size()) return -1;
  for (int k = 1; k <= extra; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (d & 0x3F);
  }
  i += extra + 1;
  static constexpr long kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  return cp;
}

// GSM 03.38 default alphabet (basic table, except ESC) and its extension table.
bool isGsm(long cp) {
  if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) return true;
  static constexpr std::u32string_view kBasic =
      U"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà";
  static constexpr std::u32string_view kExtension = U"^{}\\[~]|€";
  const auto c = static_cast<char32_t>(cp);
  return kBasic.find(c) != std::u32string_view::npos ||
         kExtension.find(c) != std::u32string_view::npos;
}

// True when every character of the UTF-8 `text` has a GSM 03.38 encoding (7-bit SMS).
bool gsmRepresentable(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const long cp = nextCodePoint(text, i);
    if (cp < 0 || !isGsm(cp)) return false;
  }
  return true;
}

// A provider's answer made safe for logs and attempts: printable ASCII, bounded, and with no
// occurrence of a secret or of the message's code/text.
std::string sanitize(std::string_view body, const std::vector<std::string_view>& secrets) {
  std::string out;
  for (char c : body) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : ' ');
    if (out.size() >= 200) break;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  for (std::string_view secret : secrets) {
    if (secret.size() < 3) continue;
    for (size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at))
      out.replace(at, secret.size(), "***");
  }
  return out;
}

class KannelSender final : public Sender {
 public:
  KannelSender(std::string url, std::string username, std::string password, std::string from,
               int dlr_mask, std::string smsc, int timeout_ms)
      : url_(std::move(url)),
        username_(std::move(username)),
        password_(std::move(password)),
        from_(std::move(from)),
        dlr_mask_(dlr_mask),
        smsc_(std::move(smsc)),
        timeout_ms_(timeout_ms) {}

  // Kannel's DLR types (the dlr-url's `type=%d`): 1 delivered, 2 failed, 4 buffered, 8 SMSC
  // accepted, 16 SMSC rejected; `answer=%A` the SMSC's text.
  Result<DeliveryReceipt> readReceipt(
      const std::map<std::string, std::string>& fields) const override {
    auto field = [&fields](const char* k) {
      auto it = fields.find(k);
      return it == fields.end() ? std::string() : it->second;
    };
    const std::string t = field("type");
    if (t == "1") return DeliveryReceipt{"delivered", "", ""};
    if (t == "2") return DeliveryReceipt{"undelivered", "30008", field("answer")};
    if (t == "16") return DeliveryReceipt{"undelivered", "30007", field("answer")};
    if (t == "4" || t == "8") return DeliveryReceipt{"sent", "", ""};
    return fail(Error::invalid("type", "unknown DLR type"));
  }

  SendResult send(const OutgoingMessage& message) override {
    SendResult result;
    if (message.channel != "sms") {
      result.outcome = SendOutcome::kPermanent;
      result.error_message = "kannel provider cannot send channel '" + message.channel + "'";
      return result;
    }
    std::vector<std::pair<std::string, std::string>> query = {
        {"username", username_}, {"password", password_}, {"from", from_},
        {"to", message.to},      {"text", message.text},
    };
    if (!smsc_.empty()) query.emplace_back("smsc", smsc_);
    if (!message.status_callback.empty()) {
      query.emplace_back("dlr-mask", std::to_string(dlr_mask_));
      query.emplace_back("dlr-url", message.status_callback + "&type=%d&answer=%A&fid=%F");
    }
    // Kannel does not switch to UCS-2 by itself: non-GSM characters would become '?'.
    if (!gsmRepresentable(message.text)) query.emplace_back("coding", "2");
    query.emplace_back("charset", "UTF-8");

    HttpRequest request;
    request.method = "GET";
    request.url = url_ + (url_.find('?') == std::string::npos ? "?" : "&") + formEncode(query);
    request.timeout_ms = timeout_ms_;
    request.connect_timeout_ms = std::min(timeout_ms_, 3000);
    const HttpResponse response = httpCall(request);

    const std::vector<std::string_view> secrets = {password_, message.code, message.text};
    if (response.status == 0) {
      result.outcome = response.not_sent ? SendOutcome::kTransient : SendOutcome::kUnknown;
      result.error_message = "kannel: " + sanitize(response.error, secrets);
      return result;
    }
    const int status = response.status;
    if (status >= 200 && status < 300) {
      // 202 "0: Accepted for delivery" or "3: Queued for later delivery": no message id.
      result.outcome = SendOutcome::kAccepted;
      result.status = "queued";
      return result;
    }
    result.error_code = status;
    result.error_message = sanitize(response.body, secrets);
    if (result.error_message.empty()) result.error_message = "HTTP " + std::to_string(status);
    if (status >= 500 || status == 429 || status == 408) {
      result.outcome = SendOutcome::kTransient;
    } else {
      // 400 (bad number, missing sender...), 403 (authorization failed), other 4xx and
      // unexpected 1xx/3xx answers: resending the same request cannot help.
      result.outcome = SendOutcome::kPermanent;
    }
    return result;
  }

 private:
  const std::string url_, username_, password_, from_;
  const int dlr_mask_;
  const std::string smsc_;
  const int timeout_ms_;
};

const std::string* setting(const ProviderConfig& config, const std::string& key) {
  const auto it = config.settings.find(key);
  return it == config.settings.end() ? nullptr : &it->second;
}

}  // namespace

Result<std::unique_ptr<Sender>> makeKannelSender(const ProviderConfig& config) {
  for (const std::string& channel : config.channels) {
    if (channel != "sms")
      return fail(Error::invalid("channels", "kannel only sends sms, not '" + channel + "'"));
  }
  std::string values[4];
  static const char* const kRequired[4] = {"url", "username", "password", "from"};
  for (int k = 0; k < 4; ++k) {
    const std::string* v = setting(config, kRequired[k]);
    if (v == nullptr || v->empty()) return fail(Error::invalid(kRequired[k], "is required"));
    values[k] = *v;
  }
  if (values[0].rfind("http://", 0) != 0 && values[0].rfind("https://", 0) != 0)
    return fail(Error::invalid("url", "must be an http:// or https:// sendsms URL"));
  int dlr_mask = 31;
  if (const std::string* v = setting(config, "dlr_mask"); v != nullptr && !v->empty()) {
    const char* end = v->data() + v->size();
    const auto [ptr, ec] = std::from_chars(v->data(), end, dlr_mask);
    if (ec != std::errc() || ptr != end || dlr_mask < 0 || dlr_mask > 255)
      return fail(Error::invalid("dlr_mask", "must be an integer between 0 and 255"));
  }
  std::string smsc;
  if (const std::string* v = setting(config, "smsc")) smsc = *v;
  if (config.timeout_ms <= 0) return fail(Error::invalid("timeout_ms", "must be positive"));
  return std::unique_ptr<Sender>(new KannelSender(values[0], values[1], values[2], values[3],
                                                  dlr_mask, smsc, config.timeout_ms));
}

}  // namespace verifyd
