#pragma once
// Errors are values across module boundaries. The core knows kinds, never Twilio numbers:
// api/twilio/errors.cc maps a kind to the HTTP status and the Twilio error code.
#include <string>
#include <utility>

namespace verifyd {

enum class ErrorKind {
  kInvalidArgument,      // a parameter has a bad value; `param` names it
  kMissingArgument,      // a required parameter is absent; `param` names it
  kNotFound,             // the resource does not exist, or is not the caller's, or has ended
  kMaxCheckAttempts,     // a verification reached its check limit
  kMaxSendAttempts,      // a verification reached its send limit
  kFeatureNotSupported,  // the service's settings do not allow the request
  kUnauthenticated,
  kMethodNotAllowed,
  kPayloadTooLarge,
  kUnsupportedMediaType,
  kRateLimited,         // a programmable rate limit bucket is full; `retry_after` says for how long
  kTooManyRateLimits,   // 60207
  kDuplicateRateLimit,  // 60208
  kInvalidRateLimitName,             // 60209
  kTooManyBuckets,                   // 60210
  kDuplicateBucket,                  // 60211
  kSmsToLandline,                    // 60205: the service skips SMS to landlines
  kTooManyPending,                   // 60212: too many concurrent verifications for one number
  kFraudBlocked,                     // 60410: Fraud Guard blocked the destination prefix
  kGeoBlocked,                       // 60605: the destination country is blocked for the channel
  kDuplicateMessagingConfiguration,  // 60213
  kPsd2CallNotAllowed,
  kPsd2ParamsRequired,  // 60206: a PSD2 service needs Amount and Payee               // 60214: PSD2
                        // verifications cannot use call
  kDuplicateEntity,     // an entity with that identity exists (409)
  kFactorMaxAttempts,   // 60310: 5 wrong codes while verifying a factor
  kChallengeMaxAttempts,   // 60308: 5 wrong codes on a challenge
  kFactorNotVerified,      // 60318: a challenge on an unverified factor
  kChallengeVerifyFailed,  // 60324: bad push signature
  kNotImplemented,         // a resource of the Twilio API that verifyd does not serve yet
  kUnavailable,            // storage is unavailable; retrying later may succeed
  kInternal,
};

struct Error {
  ErrorKind kind;
  std::string message;        // safe to show to the API caller: never carries a code or secret
  std::string param;          // the parameter to blame, when there is one
  long long retry_after = 0;  // kRateLimited: seconds until the bucket has room again

  static Error invalid(std::string param, std::string detail = {});
  static Error missing(std::string param);
  static Error notFound(std::string what = {});
  static Error internal(std::string message);
  static Error unavailable(std::string message);
  static Error of(ErrorKind kind, std::string message = {});
};

}  // namespace verifyd
