#include "verifyd/api/twilio/errors.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace verifyd::twilio {

ApiResponse renderError(const Error& error, std::string_view resource) {
  int status = 500, code = 20500;
  std::string message = error.message;
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kMissingArgument:
      status = 400, code = 60200;
      break;
    case ErrorKind::kNotFound:
      status = 404, code = 20404;
      message = "The requested resource " + std::string(resource) + " was not found";
      break;
    case ErrorKind::kMaxCheckAttempts:
      status = 429, code = 60202, message = "Max check attempts reached";
      break;
    case ErrorKind::kMaxSendAttempts:
      status = 429, code = 60203, message = "Max send attempts reached";
      break;
    case ErrorKind::kFeatureNotSupported:
      status = 400, code = 60204;
      break;
    case ErrorKind::kUnauthenticated:
      status = 401, code = 20003, message = "Authenticate";
      break;
    case ErrorKind::kMethodNotAllowed:
      status = 405, code = 20004, message = "Method not allowed";
      break;
    case ErrorKind::kPayloadTooLarge:
      status = 413, code = 20413, message = "Request entity too large";
      break;
    case ErrorKind::kUnsupportedMediaType:
      status = 415, code = 20415;
      break;
    case ErrorKind::kRateLimited:
      status = 429, code = 20429, message = "Too many requests";
      break;
    case ErrorKind::kTooManyRateLimits:
      status = 400, code = 60207;
      break;
    case ErrorKind::kDuplicateRateLimit:
      status = 400, code = 60208;
      break;
    case ErrorKind::kInvalidRateLimitName:
      status = 400, code = 60209;
      break;
    case ErrorKind::kTooManyBuckets:
      status = 400, code = 60210;
      break;
    case ErrorKind::kDuplicateBucket:
      status = 400, code = 60211;
      break;
    case ErrorKind::kSmsToLandline:
      status = 403, code = 60205;
      break;
    case ErrorKind::kTooManyPending:
      status = 429, code = 60212;
      break;
    case ErrorKind::kFraudBlocked:
      status = 403, code = 60410;
      break;
    case ErrorKind::kGeoBlocked:
      status = 403, code = 60605;
      break;
    case ErrorKind::kDuplicateMessagingConfiguration:
      status = 400, code = 60213;
      break;
    case ErrorKind::kPsd2CallNotAllowed:
      status = 400, code = 60214;
      break;
    case ErrorKind::kPsd2ParamsRequired:
      status = 400, code = 60206;
      break;
    case ErrorKind::kDuplicateEntity:
      status = 409, code = 60360;
      break;
    case ErrorKind::kFactorMaxAttempts:
      status = 429, code = 60310;
      break;
    case ErrorKind::kChallengeMaxAttempts:
      status = 429, code = 60308;
      break;
    case ErrorKind::kFactorNotVerified:
      status = 403, code = 60318;
      break;
    case ErrorKind::kChallengeVerifyFailed:
      status = 403, code = 60324;
      break;
    case ErrorKind::kNotImplemented:
      status = 501, code = 20501;
      break;
    case ErrorKind::kUnavailable:
      // The detail may name files or SQL: log it, never send it.
      status = 503, code = 20503, message = "Service unavailable, please retry";
      break;
    case ErrorKind::kInternal:
      status = 500, code = 20500, message = "Internal server error";
      break;
  }
  nlohmann::ordered_json j;
  j["code"] = code;
  j["message"] = message;
  j["more_info"] = "https://www.twilio.com/docs/errors/" + std::to_string(code);
  j["status"] = status;
  ApiResponse r{status, j.dump(), {}};
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"verifyd\"");
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  if (error.kind == ErrorKind::kRateLimited || error.retry_after > 0)
    r.headers.emplace_back("Retry-After", std::to_string(std::max(1LL, error.retry_after)));
  if (error.kind == ErrorKind::kRateLimited && !error.param.empty())
    r.headers.emplace_back("Twilio-Reached-Rate-Limit", error.param);
  return r;
}

}  // namespace verifyd::twilio
