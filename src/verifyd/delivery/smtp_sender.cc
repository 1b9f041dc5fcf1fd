// type = "smtp": e-mail over SMTP with libcurl (STARTTLS or implicit TLS, optional AUTH).
// The message is multipart/alternative (text/plain then text/html, UTF-8, base64). Acceptance
// of the message by the server (250 after DATA) is final: status "delivered".
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verifyd/delivery/providers.h"

namespace verifyd {
namespace {

// curl_global_init is not thread-safe: run it once (a function-local static is initialised
// exactly once, even with several threads racing).
void curlGlobalInit() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out.push_back(kBase64[(n >> 18) & 63]);
    out.push_back(kBase64[(n >> 12) & 63]);
    out.push_back(kBase64[(n >> 6) & 63]);
    out.push_back(kBase64[n & 63]);
  }
  if (i < in.size()) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kBase64[(n >> 18) & 63]);
    out.push_back(kBase64[(n >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kBase64[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// A MIME body part's content: base64 in lines of 76 characters, CRLF terminated.
std::string base64Lines(std::string_view in) {
  const std::string b = base64(in);
  std::string out;
  for (size_t i = 0; i < b.size(); i += 76) out.append(b, i, 76).append("\r\n");
  return out;
}

// Text in canonical form (RFC 2045): every line ending CRLF.
std::string crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 40);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out.push_back('\r');
    out.push_back(text[i]);
  }
  return out;
}

bool isAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

// RFC 2047 encoded words ("=?UTF-8?B?...?="), each at most 75 characters and never splitting a
// UTF-8 sequence, separated by folding white space.
std::string encodedWords(std::string_view text) {
  constexpr size_t kMaxBytes = 45;  // 60 base64 characters + 12 of "=?UTF-8?B?" and "?="
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = std::min(text.size(), i + kMaxBytes);
    // Back off to the start of a UTF-8 sequence (a byte that is not 10xxxxxx).
    while (end < text.size() && end > i + 1 &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
      --end;
    // Prefer to cut after a space (kept in the first word): some decoders (Python's e-mail
    // parser in display names) wrongly keep the folding white space between two words.
    if (end < text.size()) {
      const size_t space = text.substr(i, end - i).rfind(' ');
      if (space != std::string_view::npos && space >= kMaxBytes / 3) end = i + space + 1;
    }
    if (!out.empty()) out.append("\r\n ");
    out.append("=?UTF-8?B?").append(base64(text.substr(i, end - i))).append("?=");
    i = end;
  }
  return out;
}

// A display name for From: a quoted string when ASCII, RFC 2047 words otherwise.
std::string displayName(std::string_view name) {
  if (!isAscii(name)) return encodedWords(name);
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Why `address` cannot be used as a bare addr-spec (and in the SMTP envelope), or empty.
std::string badAddress(std::string_view address) {
  if (address.empty()) return "is empty";
  if (hasControl(address)) return "contains control characters";
  if (!isAscii(address)) return "contains non-ASCII characters";
  if (address.find_first_of(" <>,;\"()[]\\") != std::string_view::npos)
    return "contains characters not allowed in an address";
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size())
    return "is not of the form local@domain";
  return {};
}

// "Thu, 28 Nov 2026 08:41:04 +0000" (RFC 5322 date-time, UTC), independent of the C locale.
std::string rfc5322Date(std::time_t now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string randomHex(size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  while (out.size() < n) {
    unsigned v = rd();
    for (int k = 0; k < 8 && out.size() < n; ++k, v >>= 4) out.push_back(kHex[v & 15]);
  }
  return out;
}

bool isAlnum(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  });
}

std::string removeSecret(std::string text, std::string_view secret) {
  if (secret.size() < 3) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
    text.replace(at, secret.size(), "***");
  return text;
}

struct Upload {
  std::string_view data;
  size_t pos = 0;
  bool done = false;  // curl read the whole message: it may now send the final "."
};

size_t readUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const size_t n = std::min(size * count, upload->data.size() - upload->pos);
  std::memcpy(buffer, upload->data.data() + upload->pos, n);
  upload->pos += n;
  // curl stops reading at CURLOPT_INFILESIZE: handing out the last byte is the end.
  if (upload->pos == upload->data.size()) upload->done = true;
  return n;
}

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

struct SmtpSettings {
  std::string url;
  std::string username, password;
  bool implicit_tls = false;
  bool starttls = true;
  std::string ca_file;
  bool verify_peer = true;
  std::string from, from_name;
  int timeout_ms = 10000;
};

class SmtpSender final : public Sender {
 public:
  explicit SmtpSender(SmtpSettings settings) : s_(std::move(settings)) {}

  SendResult send(const OutgoingMessage& message) override {
    SendResult result;
    result.outcome = SendOutcome::kPermanent;
    if (message.channel != "email") {
      result.error_message = "smtp provider cannot send channel '" + message.channel + "'";
      return result;
    }
    const std::string& from = message.from.empty() ? s_.from : message.from;
    const std::string& from_name =
        message.from.empty() && message.from_name.empty() ? s_.from_name : message.from_name;
    if (std::string why = badAddress(from); !why.empty()) {
      result.error_message = "from address " + why;
      return result;
    }
    if (std::string why = badAddress(message.to); !why.empty()) {
      result.error_message = "to address " + why;
      return result;
    }
    if (hasControl(from_name)) {
      result.error_message = "from_name contains control characters";
      return result;
    }

    std::string message_id;
    if (isAlnum(message.attempt_sid))
      message_id = "<" + message.attempt_sid + "@verifyd>";
    else
      message_id = "<VL" + randomHex(32) + "@verifyd>";
    const std::string mail = compose(message, from, from_name, message_id);

    curlGlobalInit();
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) {
      result.outcome = SendOutcome::kTransient;
      result.error_message = "curl_easy_init failed";
      return result;
    }
    CURL* h = curl.get();
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcpt(
        curl_slist_append(nullptr, ("<" + message.to + ">").c_str()), curl_slist_free_all);
    const std::string mail_from = "<" + from + ">";
    Upload upload{mail, 0, false};
    char error[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(h, CURLOPT_URL, s_.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(s_.timeout_ms));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(s_.timeout_ms, 3000)));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(
        h, CURLOPT_USE_SSL,
        static_cast<long>(s_.starttls || s_.implicit_tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    if (!s_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, s_.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s_.verify_peer ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s_.verify_peer ? 2L : 0L);
    if (!s_.username.empty()) {
      curl_easy_setopt(h, CURLOPT_USERNAME, s_.username.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, s_.password.c_str());
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from.c_str());
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get());
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, readUpload);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(mail.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);

    const CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
      result.outcome = SendOutcome::kAccepted;
      result.status = "delivered";
      result.provider_message_id = message_id;
      return result;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    result.error_code = code >= 400 ? static_cast<int>(code) : 0;
    std::string detail = error[0] != '\0' ? std::string(error) : curl_easy_strerror(rc);
    if (code >= 400) detail += " (SMTP " + std::to_string(code) + ")";
    result.error_message = removeSecret("smtp: " + detail, s_.password);
    result.outcome = classify(rc, code, upload.done);
    return result;
  }

 private:
  static SendOutcome classify(CURLcode rc, long code, bool body_sent) {
    if (rc == CURLE_LOGIN_DENIED) return SendOutcome::kPermanent;  // 535
    if (code >= 500) return SendOutcome::kPermanent;  // 5xx to MAIL, RCPT, DATA or the message
    if (code >= 400) return SendOutcome::kTransient;  // 4xx: try again later
    switch (rc) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_CONNECT:
        return SendOutcome::kTransient;
      case CURLE_PEER_FAILED_VERIFICATION:  // certificate not trusted: configuration
      case CURLE_USE_SSL_FAILED:            // the server does not offer STARTTLS
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
      case CURLE_REMOTE_ACCESS_DENIED:
        return SendOutcome::kPermanent;
      default:
        break;
    }
    // No SMTP answer explains the failure (timeout, connection reset). The server can only have
    // taken the message once curl had sent all of it; before that nothing can have arrived.
    return body_sent ? SendOutcome::kUnknown : SendOutcome::kTransient;
  }

  std::string compose(const OutgoingMessage& message, const std::string& from,
                      const std::string& from_name, const std::string& message_id) const {
    std::string subject = message.subject;
    std::replace_if(
        subject.begin(), subject.end(), [](char c) { return c == '\r' || c == '\n' || c == '\t'; },
        ' ');
    std::string m;
    m.append("From: ");
    if (!from_name.empty())
      m.append(displayName(from_name)).append(" <").append(from).append(">");
    else
      m.append(from);
    m.append("\r\nTo: ").append(message.to);
    m.append("\r\nSubject: ").append(isAscii(subject) ? subject : encodedWords(subject));
    m.append("\r\nDate: ").append(rfc5322Date(std::time(nullptr)));
    m.append("\r\nMessage-ID: ").append(message_id);
    m.append("\r\nMIME-Version: 1.0\r\n");
    if (message.html.empty()) {
      m.append("Content-Type: text/plain; charset=utf-8\r\n");
      m.append("Content-Transfer-Encoding: base64\r\n\r\n");
      m.append(base64Lines(crlf(message.text)));
      return m;
    }
    const std::string boundary = "=_verifyd_" + randomHex(24);
    m.append("Content-Type: multipart/alternative; boundary=\"").append(boundary).append("\"\r\n");
    m.append("\r\nThis is a multi-part message in MIME format.\r\n");
    const std::pair<const char*, const std::string*> parts[] = {{"text/plain", &message.text},
                                                                {"text/html", &message.html}};
    for (const auto& [type, body] : parts) {
      m.append("\r\n--").append(boundary).append("\r\n");
      m.append("Content-Type: ").append(type).append("; charset=utf-8\r\n");
      m.append("Content-Transfer-Encoding: base64\r\n\r\n");
      m.append(base64Lines(crlf(*body)));
    }
    m.append("\r\n--").append(boundary).append("--\r\n");
    return m;
  }

  const SmtpSettings s_;
};

const std::string* setting(const ProviderConfig& config, const std::string& key) {
  const auto it = config.settings.find(key);
  return it == config.settings.end() ? nullptr : &it->second;
}

std::string settingOr(const ProviderConfig& config, const std::string& key, std::string fallback) {
  const std::string* v = setting(config, key);
  return v == nullptr ? fallback : *v;
}

std::optional<std::string> urlPart(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return std::nullopt;
  std::string out(value);
  curl_free(value);
  return out;
}

bool isLoopbackHost(std::string host) {
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  if (host.rfind("127.", 0) != 0) return false;
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

}  // namespace

Result<std::unique_ptr<Sender>> makeSmtpSender(const ProviderConfig& config) {
  for (const std::string& channel : config.channels) {
    if (channel != "email")
      return fail(Error::invalid("channels", "smtp only sends email, not '" + channel + "'"));
  }
  SmtpSettings s;
  s.url = settingOr(config, "url", "");
  if (s.url.empty()) return fail(Error::invalid("url", "is required"));
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), curl_url_cleanup);
  if (!url || curl_url_set(url.get(), CURLUPART_URL, s.url.c_str(), 0) != CURLUE_OK)
    return fail(Error::invalid("url", "is not a valid URL"));
  const std::string scheme = urlPart(url.get(), CURLUPART_SCHEME).value_or("");
  const std::string host = urlPart(url.get(), CURLUPART_HOST).value_or("");
  if (scheme != "smtp" && scheme != "smtps")
    return fail(Error::invalid("url", "must be smtp://host:port or smtps://host:port"));
  if (host.empty()) return fail(Error::invalid("url", "has no host"));
  if (urlPart(url.get(), CURLUPART_USER) || urlPart(url.get(), CURLUPART_PASSWORD))
    return fail(Error::invalid("url", "must not carry credentials: use username and password"));
  s.implicit_tls = scheme == "smtps";

  const std::string tls = settingOr(config, "tls", "starttls");
  if (tls == "starttls") {
    s.starttls = !s.implicit_tls;
  } else if (tls == "none") {
    if (s.implicit_tls) return fail(Error::invalid("tls", "\"none\" contradicts smtps://"));
    if (!isLoopbackHost(host))
      return fail(Error::invalid("tls", "\"none\" is only allowed for a loopback host"));
    s.starttls = false;
  } else {
    return fail(Error::invalid("tls", "must be \"starttls\" or \"none\""));
  }

  s.username = settingOr(config, "username", "");
  s.password = settingOr(config, "password", "");
  if (s.username.empty() && !s.password.empty())
    return fail(Error::invalid("username", "is required with password"));
  s.ca_file = settingOr(config, "ca_file", "");
  const std::string verify = settingOr(config, "verify_peer", "true");
  if (verify != "true" && verify != "false")
    return fail(Error::invalid("verify_peer", "must be true or false"));
  s.verify_peer = verify == "true";

  s.from = settingOr(config, "from", "");
  if (s.from.empty()) return fail(Error::invalid("from", "is required"));
  if (std::string why = badAddress(s.from); !why.empty()) return fail(Error::invalid("from", why));
  s.from_name = settingOr(config, "from_name", "");
  if (hasControl(s.from_name))
    return fail(Error::invalid("from_name", "contains control characters"));
  if (config.timeout_ms <= 0) return fail(Error::invalid("timeout_ms", "must be positive"));
  s.timeout_ms = config.timeout_ms;
  curlGlobalInit();
  return std::unique_ptr<Sender>(new SmtpSender(std::move(s)));
}

}  // namespace verifyd
