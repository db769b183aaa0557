// The labelling store: one SQLite file in WAL mode holding items (a prompt and its K candidates), annotators and
// their rankings. Every submission is one transaction committed with synchronous=FULL, so a ranking the server has
// acknowledged survives kill -9 (and power loss). One annotator ranks (or skips) an item at most once: a UNIQUE
// (item_id, annotator_id) constraint, not a check in C++, enforces it.
//
// Schema (see store.cpp for the SQL):
//   items(id, prompt UNIQUE, created_at)
//   candidates(id, item_id, position, text, model, sampling JSON)
//   annotators(id, name UNIQUE, token UNIQUE, created_at)   token: hash_token(token), never the token itself
//   rankings(id, item_id, annotator_id, skipped, ordering JSON [[best ids], ..., [worst ids]], flags JSON,
//            time_spent_ms, created_at)  UNIQUE(item_id, annotator_id)
//
// A Store is safe to share between threads: one connection behind a mutex (submissions are serialised anyway).
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

struct sqlite3;

namespace rlhf::label {

// A submission the caller got wrong (HTTP 400): unknown item, not a permutation, bad flags...
struct InvalidSubmission : Error {
  using Error::Error;
};
// The annotator already ranked or skipped this item (HTTP 409).
struct AlreadyRanked : Error {
  using Error::Error;
};

struct Candidate {
  int64_t id = 0;
  std::string text;
};

// What to import: a prompt with its candidate responses, where they came from and how they were sampled.
struct NewItem {
  std::string prompt;
  std::vector<std::string> responses;
  std::string model;     // model folder or "" when imported from a file
  std::string sampling;  // JSON object of the sampling settings, "" when unknown
};

struct Item {
  int64_t id = 0;
  std::string prompt;
  std::vector<Candidate> candidates;  // in stored (generation) order
};

struct Annotator {
  int64_t id = 0;
  std::string name;
};

// Groups of candidate ids, best first; a group of several is a tie.
using Ordering = std::vector<std::vector<int64_t>>;

struct Submission {
  int64_t item_id = 0;
  bool skip = false;
  Ordering ordering;                        // empty when skip
  std::vector<std::string> flags;           // e.g. "unsafe"
  std::optional<int64_t> time_spent_ms;     // measured by the server, absent when unknown
};

struct StoredRanking {
  int64_t id = 0;
  int64_t item_id = 0;
  std::string annotator;
  bool skipped = false;
  Ordering ordering;
  std::vector<std::string> flags;
  std::optional<int64_t> time_spent_ms;
  std::string created_at;
};

struct Progress {
  int64_t done = 0;   // items this annotator ranked or skipped
  int64_t total = 0;  // items in the store
};

// How a token is stored: "sha256:" + the hex SHA-256 of it (OpenSSL). Tokens are 256 random bits, so a plain hash
// (no salt, no slow KDF) is enough: a stolen database opens nothing.
std::string hash_token(const std::string& token);

class Store {
 public:
  enum class Open { create, existing };
  // Opens the database at path (Open::create: creating it if absent) and applies the schema.
  explicit Store(const std::string& path, Open mode = Open::create);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Adds items whose prompt is not stored yet, in one transaction. Returns how many were new.
  int64_t add_items(const std::vector<NewItem>& items);
  // Prompts already stored (so generation can skip them).
  bool has_prompt(const std::string& prompt);

  // Creates an annotator and returns its token (64 hex characters from std::random_device).
  std::string add_annotator(const std::string& name);
  std::optional<Annotator> annotator_by_token(const std::string& token);
  std::optional<Annotator> annotator_by_name(const std::string& name);
  // Annotator with this name, created (with an unused token) if absent: used by `label auto`.
  Annotator ensure_annotator(const std::string& name);

  std::optional<Item> item(int64_t item_id);
  // The next item this annotator has neither ranked nor skipped: fewest (non-skip) rankings first, then lowest id.
  std::optional<Item> next_item(int64_t annotator_id);
  // Every item this annotator has not ranked or skipped, in id order.
  std::vector<Item> pending_items(int64_t annotator_id);

  // Validates and stores one submission in one transaction. Throws InvalidSubmission (nothing written) or
  // AlreadyRanked. Returns the ranking id.
  int64_t submit(int64_t annotator_id, const Submission& s);

  Progress progress(int64_t annotator_id);
  int64_t item_count();
  std::vector<StoredRanking> rankings();  // all, in id order
  std::vector<Item> items();              // all, in id order
  std::vector<Annotator> annotators();

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

}  // namespace rlhf::label
