#pragma once
#include <string_view>

#include "verifyd/api/response.h"
#include "verifyd/common/error.h"

namespace verifyd::twilio {

// The one place that maps an error kind to an HTTP status and a Twilio error code, and renders
// `{"code","message","more_info","status"}`. `resource` is the request path without `/v2`,
// named in 404 messages as Twilio does.
ApiResponse renderError(const Error& error, std::string_view resource);

}  // namespace verifyd::twilio
