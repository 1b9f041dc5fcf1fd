#include "verifyd/storage/postgres/pg_conn.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace verifyd::pg {

// ---- parameters and rows --------------------------------------------------------------------

Params& Params::text(std::string_view v) {
  values_.emplace_back(v);
  is_null_.push_back(false);
  formats_.push_back(0);
  return *this;
}
Params& Params::integer(std::int64_t v) { return text(std::to_string(v)); }
Params& Params::boolean(bool v) { return text(v ? "true" : "false"); }
Params& Params::bytes(std::string_view v) {
  values_.emplace_back(v);
  is_null_.push_back(false);
  formats_.push_back(1);
  return *this;
}
Params& Params::optText(const std::optional<std::string>& v) {
  if (v) return text(*v);
  return null();
}
Params& Params::null() {
  values_.emplace_back();
  is_null_.push_back(true);
  formats_.push_back(0);
  return *this;
}

std::int64_t Rows::affected() const {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

std::string Rows::text(int row, int col) const {
  if (isNull(row, col)) return {};
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

std::optional<std::string> Rows::optText(int row, int col) const {
  if (isNull(row, col)) return std::nullopt;
  return text(row, col);
}

std::string Rows::bytes(int row, int col) const {
  if (isNull(row, col)) return {};
  std::size_t n = 0;
  unsigned char* raw =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &n);
  if (!raw) return {};
  std::string out(reinterpret_cast<const char*>(raw), n);
  PQfreemem(raw);
  return out;
}

std::int64_t Rows::integer(int row, int col) const {
  if (isNull(row, col)) return 0;
  return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10);
}

bool Rows::boolean(int row, int col) const {
  if (isNull(row, col)) return false;
  const char* v = PQgetvalue(r_.get(), row, col);
  return v[0] == 't' || v[0] == '1';
}

// ---- connection -----------------------------------------------------------------------------

namespace {
// libpq's messages span lines ("…\n\tIs the server running…"): one line for the logs.
std::string oneLine(std::string msg) {
  std::string out;
  for (char ch : msg) {
    if (ch == '\n' || ch == '\t' || ch == '\r') ch = ' ';
    if (ch == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(ch);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Messages the server sends besides results: libpq's default prints them all to stderr, such
// as the NOTICE of every CREATE TABLE IF NOT EXISTS of an already migrated database. Notices
// (and INFO, LOG, DEBUG) are routine: debug level; a WARNING is worth seeing.
void onNotice(void*, const PGresult* r) {
  const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (!severity) severity = PQresultErrorField(r, PG_DIAG_SEVERITY);
  const bool warning = severity && std::strcmp(severity, "WARNING") == 0;
  if (!spdlog::should_log(warning ? spdlog::level::warn : spdlog::level::debug)) return;
  std::string msg = oneLine(PQresultErrorMessage(r));
  if (warning)
    spdlog::warn("postgres: {}", msg);
  else
    spdlog::debug("postgres: {}", msg);
}
}  // namespace

PGconn* connect(const std::string& conninfo, int connect_timeout_s) {
  const std::string timeout = std::to_string(connect_timeout_s);
  // Keywords are applied in order and the expanded conninfo comes last: its own settings win.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "verifyd", conninfo.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keywords, values, 1);
  if (c) PQsetNoticeReceiver(c, onNotice, nullptr);
  return c;
}

Conn::Conn(std::string conninfo, ConnOptions options)
    : conninfo_(std::move(conninfo)), options_(options) {}

Conn::~Conn() { drop(); }

void Conn::drop() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  statements_.clear();
}

Error Conn::failure(std::string_view what) {
  std::string msg = oneLine(conn_ ? PQerrorMessage(conn_) : "no connection");
  return Error::unavailable("postgres " + std::string(what) + ": " + msg);
}

Status Conn::ensure() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return {};
  drop();
  conn_ = connect(conninfo_, options_.connect_timeout_s);
  if (!conn_) return fail(Error::unavailable("postgres connect: out of memory"));
  if (PQstatus(conn_) != CONNECTION_OK) {
    Error e = failure("connect");
    drop();
    return fail(e);
  }
  // Bounded statements (a lock wait included), and commits that are durable whatever the
  // server's default: `off` would acknowledge a commit before its WAL is flushed.
  auto set = exec("SET statement_timeout = " + std::to_string(options_.statement_timeout_ms) +
                  "; SELECT current_setting('synchronous_commit')");
  if (!set) {
    drop();
    return fail(set.error());
  }
  if (set->size() == 1 && set->text(0, 0) == "off") {
    if (auto on = exec("SET synchronous_commit = on"); !on) {
      drop();
      return fail(on.error());
    }
  }
  return {};
}

Result<Rows> Conn::collect() {
  using Clock = std::chrono::steady_clock;
  // The server cancels a statement at statement_timeout; this bounds the wait for a server
  // that stopped answering altogether (a dead host, a partition).
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.statement_timeout_ms) +
                        std::chrono::seconds(5);
  PGresult* keep = nullptr;
  bool failed = false;
  for (;;) {
    while (PQisBusy(conn_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        if (keep) PQclear(keep);
        drop();
        return fail(Error::unavailable("postgres: no answer from the server"));
      }
      pollfd p{PQsocket(conn_), POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (n > 0 && !PQconsumeInput(conn_))) {
        Error e = failure("read");
        if (keep) PQclear(keep);
        drop();
        return fail(e);
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (!r) break;
    auto st = PQresultStatus(r);
    bool is_error =
        st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
    if (failed) {
      PQclear(r);  // the first error is the one to report
    } else {
      if (keep) PQclear(keep);
      keep = r;
      failed = is_error;
    }
  }
  if (!keep) {
    Error e = failure("query");
    if (PQstatus(conn_) != CONNECTION_OK) drop();
    return fail(e);
  }
  Rows rows(keep);
  if (failed) {
    const char* state = PQresultErrorField(keep, PG_DIAG_SQLSTATE);
    sqlstate_ = state ? state : "";
    std::string msg = oneLine(PQresultErrorMessage(keep));
    // The server ended the session (shutdown, pg_terminate_backend) or the link broke.
    if (PQstatus(conn_) != CONNECTION_OK || sqlstate_.rfind("08", 0) == 0 ||
        sqlstate_.rfind("57P", 0) == 0)
      drop();
    return fail(Error::unavailable("postgres: " + msg));
  }
  return rows;
}

Result<std::string> Conn::prepared(const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  // Built in two steps: GCC 12 at -O3 reports a false -Wrestrict on "s" + to_string(...).
  std::string name = std::to_string(statements_.size() + 1);
  name.insert(name.begin(), 's');
  if (!PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr)) {
    Error e = failure("prepare");
    drop();
    return fail(e);
  }
  auto r = collect();
  if (!r) return fail(r.error());
  statements_.emplace(sql, name);
  return name;
}

Result<Rows> Conn::query(const std::string& sql, const Params& params) {
  if (!conn_) return fail(Error::unavailable("postgres: not connected"));
  auto name = prepared(sql);
  if (!name) return fail(name.error());
  const int n = params.size();
  std::vector<const char*> values(static_cast<std::size_t>(n));
  std::vector<int> lengths(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto k = static_cast<std::size_t>(i);
    values[k] = params.is_null_[k] ? nullptr : params.values_[k].data();
    lengths[k] = static_cast<int>(params.values_[k].size());
  }
  if (!PQsendQueryPrepared(conn_, name->c_str(), n, values.data(), lengths.data(),
                           params.formats_.data(), 0)) {
    Error e = failure("send");
    drop();
    return fail(e);
  }
  return collect();
}

Result<Rows> Conn::exec(const std::string& sql) {
  if (!conn_) return fail(Error::unavailable("postgres: not connected"));
  if (!PQsendQuery(conn_, sql.c_str())) {
    Error e = failure("send");
    drop();
    return fail(e);
  }
  return collect();
}

Status Conn::begin() {
  Error last = Error::unavailable("postgres: not connected");
  for (int i = 0; i < 2; ++i) {
    if (auto st = ensure(); !st) return st;
    auto r = exec("BEGIN");
    if (r) return {};
    last = r.error();
    // A connection that died while idle is only found out now: nothing ran, so connecting
    // again and retrying once is safe. Any other failure is reported.
    if (conn_) break;
  }
  return fail(last);
}

Status Conn::commit() {
  auto r = exec("COMMIT");
  if (!r) return fail(r.error());
  // COMMIT of a transaction that had failed answers ROLLBACK, without an error.
  if (r->command() != "COMMIT") return fail(Error::unavailable("postgres: transaction aborted"));
  return {};
}

void Conn::rollback() {
  if (!conn_) return;
  if (auto r = exec("ROLLBACK"); !r) drop();
}

// ---- query helpers --------------------------------------------------------------------------

Result<std::int64_t> scalar(Conn& c, const std::string& sql, const Params& params) {
  auto r = c.query(sql, params);
  if (!r) return fail(r.error());
  if (r->empty()) return std::int64_t{0};
  return r->integer(0, 0);
}

Result<std::int64_t> change(Conn& c, const std::string& sql, const Params& params) {
  auto r = c.query(sql, params);
  if (!r) return fail(r.error());
  return r->affected();
}

Status run(Conn& c, const std::string& sql, const Params& params) {
  auto r = c.query(sql, params);
  if (!r) return fail(r.error());
  return {};
}

}  // namespace verifyd::pg
