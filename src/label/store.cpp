// SQLite store for the labelling server: schema, WAL, one transaction per submission. See store.h.
#include "label/store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

namespace rlhf::label {
namespace {

using nlohmann::json;

// Version 1: the tables below. Bump and migrate when they change.
// 2: annotators.token holds hash_token(token), never the token (version 1 stored it as it is; opened, a version-1
// database is migrated in place).
constexpr int kSchemaVersion = 2;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
  id INTEGER PRIMARY KEY,
  prompt TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE IF NOT EXISTS candidates(
  id INTEGER PRIMARY KEY,
  item_id INTEGER NOT NULL REFERENCES items(id),
  position INTEGER NOT NULL,
  text TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '',
  sampling TEXT NOT NULL DEFAULT '',
  UNIQUE(item_id, position));
CREATE TABLE IF NOT EXISTS annotators(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  token TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE IF NOT EXISTS rankings(
  id INTEGER PRIMARY KEY,
  item_id INTEGER NOT NULL REFERENCES items(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  skipped INTEGER NOT NULL,
  ordering TEXT NOT NULL,
  flags TEXT NOT NULL,
  time_spent_ms INTEGER,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE(item_id, annotator_id));
CREATE INDEX IF NOT EXISTS rankings_annotator ON rankings(annotator_id);
)sql";

// Limits on what one submission may carry, so a client cannot grow the database without bound.
constexpr size_t kMaxFlags = 16;
constexpr size_t kMaxFlagLength = 64;

// One prepared statement; finalized on scope exit. Binds are 1-based as in SQLite.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    RLHF_CHECK(rc == SQLITE_OK, "sqlite: cannot prepare \"", sql, "\": ", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // True while there is a row.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("sqlite: ", sqlite3_errmsg(db_), " (code ", rc, ") in \"", sqlite3_sql(stmt_), "\"");
  }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }

 private:
  void check(int rc) { RLHF_CHECK(rc == SQLITE_OK, "sqlite: bind failed: ", sqlite3_errmsg(db_)); }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    fail("sqlite: ", msg, " in \"", sql, "\"");
  }
}

// BEGIN IMMEDIATE ... COMMIT; rolls back unless commit() was reached.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);  // best effort while unwinding
  }
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

// Version 1 -> 2: every stored token replaced by its hash, in one transaction.
void migrate_tokens_v1(sqlite3* db) {
  Transaction tx(db);
  std::vector<std::pair<int64_t, std::string>> rows;
  {
    Stmt st(db, "SELECT id, token FROM annotators");
    while (st.step()) rows.emplace_back(st.int64(0), st.text(1));
  }
  for (const auto& [id, token] : rows) {
    Stmt up(db, "UPDATE annotators SET token = ? WHERE id = ?");
    up.bind(1, hash_token(token)).bind(2, id).step();
  }
  exec(db, "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  tx.commit();
}

std::string random_token() {
  std::random_device rd;  // /dev/urandom on Linux
  std::string out;
  char buf[9];
  for (int i = 0; i < 8; ++i) {  // 8 x 32 bits = 256 bits
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    out += buf;
  }
  return out;
}

std::vector<Candidate> load_candidates(sqlite3* db, int64_t item_id) {
  Stmt st(db, "SELECT id, text FROM candidates WHERE item_id = ? ORDER BY position");
  st.bind(1, item_id);
  std::vector<Candidate> out;
  while (st.step()) out.push_back({st.int64(0), st.text(1)});
  return out;
}

std::optional<Item> load_item(sqlite3* db, int64_t item_id) {
  Stmt st(db, "SELECT prompt FROM items WHERE id = ?");
  st.bind(1, item_id);
  if (!st.step()) return std::nullopt;
  Item it{item_id, st.text(0), {}};
  it.candidates = load_candidates(db, item_id);
  return it;
}

Ordering parse_ordering(const std::string& s) {
  Ordering out;
  for (const auto& group : json::parse(s)) out.push_back(group.get<std::vector<int64_t>>());
  return out;
}

// Throws InvalidSubmission unless `ordering` is a partition of exactly the item's candidate ids.
void check_ordering(const Item& item, const Ordering& ordering) {
  std::set<int64_t> expected;
  for (const auto& c : item.candidates) expected.insert(c.id);
  std::set<int64_t> seen;
  for (const auto& group : ordering) {
    if (group.empty()) throw InvalidSubmission("ranking has an empty group: every group needs at least one candidate id");
    for (int64_t id : group) {
      if (!expected.count(id))
        throw InvalidSubmission(cat("ranking names candidate ", id, ", which is not a candidate of item ", item.id,
                                    ": use the ids from GET /api/next"));
      if (!seen.insert(id).second)
        throw InvalidSubmission(cat("ranking names candidate ", id, " twice: each candidate appears exactly once"));
    }
  }
  if (seen.size() != expected.size()) {
    std::string missing;
    for (int64_t id : expected)
      if (!seen.count(id)) missing += (missing.empty() ? "" : ", ") + std::to_string(id);
    throw InvalidSubmission(cat("ranking is not a permutation of the ", expected.size(),
                                " candidates of item ", item.id, ": missing ", missing));
  }
}

void check_flags(const std::vector<std::string>& flags) {
  if (flags.size() > kMaxFlags) throw InvalidSubmission(cat("at most ", kMaxFlags, " flags, got ", flags.size()));
  for (const auto& f : flags)
    if (f.empty() || f.size() > kMaxFlagLength)
      throw InvalidSubmission(cat("a flag must have 1 to ", kMaxFlagLength, " characters, got ", f.size()));
}

}  // namespace

std::string hash_token(const std::string& token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  RLHF_CHECK(EVP_Digest(token.data(), token.size(), md, &n, EVP_sha256(), nullptr) == 1, "SHA-256 failed (OpenSSL)");
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

Store::Store(const std::string& path, Open mode) : path_(path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (mode == Open::create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    fail("cannot open label database ", path, ": ", msg, 
         mode == Open::existing ? " (hint: create it with `rlhf label serve` or `rlhf label add-annotator`)"
                                : " (hint: does the folder exist and is it writable?)");
  }
  try {
    // Another process (`label auto` beside `label serve`) may hold the write lock for a moment.
    sqlite3_busy_timeout(db_, 10000);
    {
      Stmt wal(db_, "PRAGMA journal_mode=WAL");
      RLHF_CHECK(wal.step() && wal.text(0) == "wal", "label database ", path, ": cannot switch to WAL mode (got '",
                 wal.text(0), "'; hint: WAL needs a local file system)");
    }
    exec(db_, "PRAGMA synchronous=FULL");  // COMMIT returns only after the WAL is on disk
    exec(db_, "PRAGMA foreign_keys=ON");
    exec(db_, kSchema);
    std::optional<std::string> version;
    {
      Stmt ver(db_, "SELECT value FROM meta WHERE key = 'schema_version'");
      if (ver.step()) version = ver.text(0);
    }
    if (version == "1") {
      migrate_tokens_v1(db_);
    } else if (version) {
      RLHF_CHECK(*version == std::to_string(kSchemaVersion), "label database ", path, " has schema version ",
                 *version, ", this build reads version ", kSchemaVersion, " (hint: use a matching rlhf build)");
    } else {
      Stmt put(db_, "INSERT INTO meta(key, value) VALUES('schema_version', ?)");
      put.bind(1, std::to_string(kSchemaVersion)).step();
    }
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

Store::~Store() { sqlite3_close(db_); }

int64_t Store::add_items(const std::vector<NewItem>& items) {
  std::lock_guard<std::mutex> lock(mutex_);
  Transaction tx(db_);
  int64_t added = 0;
  for (const auto& item : items) {
    RLHF_CHECK(!item.responses.empty(), "item with prompt \"", item.prompt.substr(0, 60), "\" has no responses");
    Stmt ins(db_, "INSERT INTO items(prompt) VALUES(?) ON CONFLICT(prompt) DO NOTHING");
    ins.bind(1, item.prompt).step();
    if (sqlite3_changes(db_) == 0) continue;  // prompt already stored
    int64_t item_id = sqlite3_last_insert_rowid(db_);
    for (size_t i = 0; i < item.responses.size(); ++i) {
      Stmt c(db_, "INSERT INTO candidates(item_id, position, text, model, sampling) VALUES(?, ?, ?, ?, ?)");
      c.bind(1, item_id).bind(2, static_cast<int64_t>(i)).bind(3, item.responses[i]).bind(4, item.model);
      c.bind(5, item.sampling).step();
    }
    ++added;
  }
  tx.commit();
  return added;
}

bool Store::has_prompt(const std::string& prompt) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, "SELECT 1 FROM items WHERE prompt = ?");
  st.bind(1, prompt);
  return st.step();
}

std::string Store::add_annotator(const std::string& name) {
  RLHF_CHECK(!name.empty() && name.size() <= 100, "annotator name must have 1 to 100 characters, got \"", name, "\"");
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt exists(db_, "SELECT 1 FROM annotators WHERE name = ?");
  exists.bind(1, name);
  RLHF_CHECK(!exists.step(), "annotator \"", name, "\" already exists in ", path_,
             " (hint: choose another name; tokens are shown only once)");
  std::string token = random_token();
  Stmt ins(db_, "INSERT INTO annotators(name, token) VALUES(?, ?)");
  ins.bind(1, name).bind(2, hash_token(token)).step();
  return token;
}

std::optional<Annotator> Store::annotator_by_token(const std::string& token) {
  if (token.empty() || token.size() > 1024) return std::nullopt;
  const std::string hash = hash_token(token);
  std::lock_guard<std::mutex> lock(mutex_);
  // The lookup is by hash, so its timing says nothing about the token; the stored hash is then compared in
  // constant time all the same.
  Stmt st(db_, "SELECT id, name, token FROM annotators WHERE token = ?");
  st.bind(1, hash);
  if (!st.step()) return std::nullopt;
  const std::string stored = st.text(2);
  if (stored.size() != hash.size() || CRYPTO_memcmp(stored.data(), hash.data(), hash.size()) != 0) return std::nullopt;
  return Annotator{st.int64(0), st.text(1)};
}

std::optional<Annotator> Store::annotator_by_name(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, "SELECT id, name FROM annotators WHERE name = ?");
  st.bind(1, name);
  if (!st.step()) return std::nullopt;
  return Annotator{st.int64(0), st.text(1)};
}

Annotator Store::ensure_annotator(const std::string& name) {
  if (auto a = annotator_by_name(name)) return *a;
  add_annotator(name);
  return *annotator_by_name(name);
}

std::optional<Item> Store::item(int64_t item_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return load_item(db_, item_id);
}

std::optional<Item> Store::next_item(int64_t annotator_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, R"sql(
    SELECT i.id FROM items i
    WHERE NOT EXISTS (SELECT 1 FROM rankings r WHERE r.item_id = i.id AND r.annotator_id = ?1)
    ORDER BY (SELECT COUNT(*) FROM rankings r WHERE r.item_id = i.id AND r.skipped = 0), i.id
    LIMIT 1)sql");
  st.bind(1, annotator_id);
  if (!st.step()) return std::nullopt;
  return load_item(db_, st.int64(0));
}

std::vector<Item> Store::pending_items(int64_t annotator_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, R"sql(
    SELECT i.id FROM items i
    WHERE NOT EXISTS (SELECT 1 FROM rankings r WHERE r.item_id = i.id AND r.annotator_id = ?1)
    ORDER BY i.id)sql");
  st.bind(1, annotator_id);
  std::vector<int64_t> ids;
  while (st.step()) ids.push_back(st.int64(0));
  std::vector<Item> out;
  for (int64_t id : ids) out.push_back(*load_item(db_, id));
  return out;
}

int64_t Store::submit(int64_t annotator_id, const Submission& s) {
  check_flags(s.flags);
  std::lock_guard<std::mutex> lock(mutex_);
  Transaction tx(db_);
  auto item = load_item(db_, s.item_id);
  if (!item) throw InvalidSubmission(cat("unknown item_id ", s.item_id, ": use the item_id from GET /api/next"));
  if (s.skip) {
    if (!s.ordering.empty()) throw InvalidSubmission("a skip carries no ranking: send either \"skip\" or \"ranking\"");
  } else {
    check_ordering(*item, s.ordering);
  }
  Stmt dup(db_, "SELECT skipped FROM rankings WHERE item_id = ? AND annotator_id = ?");
  dup.bind(1, s.item_id).bind(2, annotator_id);
  if (dup.step())
    throw AlreadyRanked(cat("item ", s.item_id, " was already ", dup.int64(0) ? "skipped" : "ranked",
                            " by this annotator: each annotator ranks an item once"));
  Stmt ins(db_, R"sql(INSERT INTO rankings(item_id, annotator_id, skipped, ordering, flags, time_spent_ms)
                     VALUES(?, ?, ?, ?, ?, ?))sql");
  ins.bind(1, s.item_id).bind(2, annotator_id).bind(3, int64_t{s.skip ? 1 : 0});
  ins.bind(4, json(s.ordering).dump()).bind(5, json(s.flags).dump());
  if (s.time_spent_ms) ins.bind(6, *s.time_spent_ms); else ins.bind_null(6);
  ins.step();
  int64_t id = sqlite3_last_insert_rowid(db_);
  tx.commit();
  return id;
}

Progress Store::progress(int64_t annotator_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Progress p;
  Stmt done(db_, "SELECT COUNT(*) FROM rankings WHERE annotator_id = ?");
  done.bind(1, annotator_id).step();
  p.done = done.int64(0);
  Stmt total(db_, "SELECT COUNT(*) FROM items");
  total.step();
  p.total = total.int64(0);
  return p;
}

int64_t Store::item_count() {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt total(db_, "SELECT COUNT(*) FROM items");
  total.step();
  return total.int64(0);
}

std::vector<StoredRanking> Store::rankings() {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, R"sql(SELECT r.id, r.item_id, a.name, r.skipped, r.ordering, r.flags, r.time_spent_ms, r.created_at
                     FROM rankings r JOIN annotators a ON a.id = r.annotator_id ORDER BY r.id)sql");
  std::vector<StoredRanking> out;
  while (st.step()) {
    StoredRanking r;
    r.id = st.int64(0);
    r.item_id = st.int64(1);
    r.annotator = st.text(2);
    r.skipped = st.int64(3) != 0;
    r.ordering = parse_ordering(st.text(4));
    r.flags = json::parse(st.text(5)).get<std::vector<std::string>>();
    if (!st.is_null(6)) r.time_spent_ms = st.int64(6);
    r.created_at = st.text(7);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Item> Store::items() {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, "SELECT id FROM items ORDER BY id");
  std::vector<int64_t> ids;
  while (st.step()) ids.push_back(st.int64(0));
  std::vector<Item> out;
  for (int64_t id : ids) out.push_back(*load_item(db_, id));
  return out;
}

std::vector<Annotator> Store::annotators() {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt st(db_, "SELECT id, name FROM annotators ORDER BY id");
  std::vector<Annotator> out;
  while (st.step()) out.push_back({st.int64(0), st.text(1)});
  return out;
}

}  // namespace rlhf::label
