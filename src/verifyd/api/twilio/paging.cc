#include "verifyd/api/twilio/paging.h"

#include <charconv>

namespace verifyd::twilio {

Result<PageRequest> parsePageRequest(const Params& query) {
  PageRequest r;
  auto size = query.getInt("PageSize", 1, 1000);
  if (!size) return fail(size.error());
  if (*size) r.page_size = **size;
  auto page = query.getInt("Page", 0, 1000000000);
  if (!page) return fail(page.error());
  if (*page) r.page = **page;
  if (auto token = query.get("PageToken"); token && !token->empty()) {
    // Tokens are `PA<seq>` (the page after record seq) or `PB<seq>` (the page before it).
    long long seq = -1;
    bool ok = token->size() > 2 && ((*token)[1] == 'A' || (*token)[1] == 'B') && (*token)[0] == 'P';
    if (ok) {
      auto [end, ec] = std::from_chars(token->data() + 2, token->data() + token->size(), seq);
      ok = ec == std::errc() && end == token->data() + token->size() && seq >= 0;
    }
    if (!ok) return fail(Error::invalid("PageToken"));
    r.cursor.direction =
        (*token)[1] == 'A' ? PageCursor::Direction::kAfter : PageCursor::Direction::kBefore;
    r.cursor.seq = seq;
    r.token = *token;
  }
  return r;
}

ojson pageMetaFor(const PageRequest& req, long long first_seq, long long last_seq, bool has_next,
                  bool has_previous, bool empty, const std::string& path, const std::string& extra,
                  const std::string& key) {
  auto link = [&](int page, const std::string& token) {
    std::string u = path + "?" + extra + "PageSize=" + std::to_string(req.page_size) +
                    "&Page=" + std::to_string(page);
    if (!token.empty()) u += "&PageToken=" + token;
    return u;
  };
  ojson meta;
  meta["page"] = req.page;
  meta["page_size"] = req.page_size;
  meta["first_page_url"] = link(0, "");
  meta["previous_page_url"] =
      has_previous && !empty && req.page > 0
          ? ojson(req.page == 1 ? link(0, "")
                                : link(req.page - 1, "PB" + std::to_string(first_seq)))
          : ojson(nullptr);
  meta["url"] = link(req.page, req.token);
  meta["next_page_url"] = has_next && !empty
                              ? ojson(link(req.page + 1, "PA" + std::to_string(last_seq)))
                              : ojson(nullptr);
  meta["key"] = key;
  return meta;
}

}  // namespace verifyd::twilio
