#include "verifyd/common/error.h"

namespace verifyd {

Error Error::invalid(std::string param, std::string detail) {
  std::string message = "Invalid parameter: " + param;
  if (!detail.empty()) message += ": " + detail;
  return Error{ErrorKind::kInvalidArgument, std::move(message), std::move(param)};
}

Error Error::missing(std::string param) {
  std::string message = "Missing required parameter " + param + " in the post body";
  return Error{ErrorKind::kMissingArgument, std::move(message), std::move(param)};
}

Error Error::notFound(std::string what) { return Error{ErrorKind::kNotFound, std::move(what), {}}; }

Error Error::internal(std::string message) {
  return Error{ErrorKind::kInternal, std::move(message), {}};
}

Error Error::unavailable(std::string message) {
  return Error{ErrorKind::kUnavailable, std::move(message), {}};
}

Error Error::of(ErrorKind kind, std::string message) { return Error{kind, std::move(message), {}}; }

}  // namespace verifyd
