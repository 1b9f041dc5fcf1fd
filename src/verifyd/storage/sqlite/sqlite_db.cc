#include "verifyd/storage/sqlite/sqlite_db.h"

#include <cstdio>
#include <cstdlib>

namespace verifyd::sqlite {

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Query& Query::bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Query& Query::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Query& Query::bind(int i, const std::optional<std::string>& v) {
  if (v) return bind(i, std::string_view(*v));
  sqlite3_bind_null(stmt_, i);
  return *this;
}
Query& Query::blob(int i, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}

Result<bool> Query::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return fail(db_.error("step"));
}

Status Query::run() {
  for (;;) {
    auto r = step();
    if (!r) return fail(r.error());
    if (!*r) return {};
  }
}

std::string Query::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}
std::optional<std::string> Query::optText(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
  return text(col);
}
std::string Query::blobAt(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string(static_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}
std::int64_t Query::integer(int col) const { return sqlite3_column_int64(stmt_, col); }

Result<std::unique_ptr<Db>> Db::open(const std::string& path, bool durable) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) return fail(db->error("open " + path));
  sqlite3_busy_timeout(raw, 10000);
  // WAL lets readers run beside the single writer. synchronous=FULL fsyncs the WAL on every
  // commit, so a committed verification survives power loss, not only a crash.
  if (auto st = db->exec("PRAGMA journal_mode=WAL"); !st) return fail(st.error());
  if (auto st = db->exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF"); !st)
    return fail(st.error());
  if (auto st = db->exec("PRAGMA foreign_keys=ON"); !st) return fail(st.error());
  return db;
}

Db::~Db() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  for (auto& [sql, stmt] : by_address_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

sqlite3_stmt* Db::prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "verifyd: bad SQL (%s): %s\n", sqlite3_errmsg(db_), sql);
    std::abort();
  }
  return stmt;
}

Query Db::query(const char* sql) {
  auto it = by_address_.find(sql);
  if (it == by_address_.end()) it = by_address_.emplace(sql, prepare(sql)).first;
  return Query(*this, it->second);
}

Query Db::query(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) it = cache_.emplace(sql, prepare(sql.c_str())).first;
  return Query(*this, it->second);
}

Status Db::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown";
    sqlite3_free(msg);
    return fail(Error::unavailable(std::string("sqlite: ") + m));
  }
  return {};
}

Error Db::error(std::string_view what) {
  return Error::unavailable("sqlite " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

}  // namespace verifyd::sqlite
