#include "verifyd/delivery/http_client.h"

#include <curl/curl.h>

#include <memory>

#include "verifyd/common/url.h"

namespace verifyd {
namespace {

// curl_global_init is not thread-safe: run it once, before any worker calls curl.
struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

size_t appendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

HttpResponse httpCall(const HttpRequest& request) {
  static CurlGlobal global;
  HttpResponse response;
  // One handle per thread, reset between calls: it keeps its connections open, so a worker
  // sending many messages to one provider does not pay a TCP (and TLS) handshake for each.
  thread_local std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(),
                                                                        curl_easy_cleanup);
  if (!curl) {
    response.error = "curl_easy_init failed";
    response.not_sent = true;
    return response;
  }
  CURL* h = curl.get();
  curl_easy_reset(h);
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers)
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers,
                                                                          curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (request.method != "GET") {
    // POST, PUT, ...: the body goes as POST fields, under the method asked for.
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    if (request.method != "POST")
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (!request.basic_user.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, request.basic_user.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, request.basic_password.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    response.error = curl_easy_strerror(rc);
    // Failures before the connection was made cannot have delivered anything.
    response.not_sent = rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
                        rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      curl_off_t connected = 0;
      curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
      response.not_sent = connected == 0;
    }
    return response;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

std::string urlEncode(std::string_view value) { return percentEncode(value); }

std::string formEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out.append(urlEncode(name)).push_back('=');
    out.append(urlEncode(value));
  }
  return out;
}

}  // namespace verifyd
