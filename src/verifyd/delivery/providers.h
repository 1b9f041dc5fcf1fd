#pragma once
// Provider constructors, one per `type` of a [[provider]] table. Each validates its settings
// (kInvalidArgument (Error::invalid) naming the bad setting) and returns a thread-safe Sender.
#include <memory>

#include "verifyd/common/result.h"
#include "verifyd/delivery/sender.h"

namespace verifyd {

// type = "kannel": SMS through Kannel's sendsms HTTP interface, DLRs back to status_callback.
Result<std::unique_ptr<Sender>> makeKannelSender(const ProviderConfig& config);
// type = "smtp": e-mail over SMTP (libcurl) with STARTTLS and AUTH, multipart text + HTML.
Result<std::unique_ptr<Sender>> makeSmtpSender(const ProviderConfig& config);
// type = "twilio": a Twilio-compatible API: Messages.json for sms/whatsapp, Calls.json with
// TwiML <Say> for call.
Result<std::unique_ptr<Sender>> makeTwilioSender(const ProviderConfig& config);
// type = "webhook": a JSON POST built from a body template, for any other gateway.
Result<std::unique_ptr<Sender>> makeWebhookSender(const ProviderConfig& config);

}  // namespace verifyd
