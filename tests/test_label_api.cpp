// The labelling server's HTTP API against a real server on a free loopback port, started in-process.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <fstream>
#include <thread>

#include "label/assets.h"
#include "label/candidates.h"
#include "common/http.h"
#include "label/server.h"
#include "label/store.h"
#include "test_label_util.h"

using namespace rlhf::label;
using rlhf::label::testing::make_items;
using rlhf::label::testing::TempDir;
using nlohmann::json;

namespace {

// Raw bytes to 127.0.0.1:port, `piece` bytes at a time with `gap` between pieces (a slow client), then the whole
// answer (read until the server closes or 10 s pass).
std::string raw_http(int port, const std::string& request, size_t piece = 0,
                     std::chrono::milliseconds gap = std::chrono::milliseconds(0)) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (piece == 0) piece = request.size();
  for (size_t sent = 0; sent < request.size(); sent += piece) {
    if (::send(fd, request.data() + sent, std::min(piece, request.size() - sent), MSG_NOSIGNAL) <= 0) break;
    if (gap.count() > 0) std::this_thread::sleep_for(gap);
  }
  // No half-close (cpp-httplib answers nothing to a client that has shut down its side): the server closes the
  // connection after the request (keep_alive_s = 0 in the fixture) or after its read timeout.
  std::string answer;
  char buf[65536];
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return answer;
}

int status_of(const std::string& answer) {
  if (answer.compare(0, 9, "HTTP/1.1 ") != 0 || answer.size() < 12) return 0;
  return std::stoi(answer.substr(9, 3));
}

const std::string kXss = "<script>alert(1)</script>";
const std::string kSql = "'; DROP TABLE rankings; --";

class LabelApi : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;
  std::string alice, bob;

  void start(std::vector<NewItem> items) {
    store = std::make_unique<Store>(dir.file("db.sqlite"));
    store->add_items(items);
    alice = store->add_annotator("alice");
    bob = store->add_annotator("bob");
    ServerOptions opts;
    opts.read_timeout_ms = 1000;
    opts.keep_alive_s = 0;  // one request per connection: raw_http reads until the server closes
    server = std::make_unique<Server>(*store, opts);
    port = server->bind("127.0.0.1", 0);
    thread = std::thread([this] { server->serve(); });
  }
  void SetUp() override {
    auto items = make_items(3, 4);
    items.push_back({"Echo this: " + kXss, {kXss, kSql, "fine"}, "", ""});
    start(items);
  }
  void TearDown() override {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
  }

  httplib::Client client(const std::string& token = "") {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(5);
    cli.set_read_timeout(20);
    if (!token.empty()) cli.set_default_headers({{"Authorization", "Bearer " + token}});
    return cli;
  }
  static json body(const httplib::Result& res) { return json::parse(res->body); }
};

TEST_F(LabelApi, EveryPageAndCallNeedsAToken) {
  auto anon = client();
  for (const char* path : {"/api/next", "/api/progress", "/api/me", "/app.js"}) {
    auto res = anon.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_NE(body(res)["error"].get<std::string>().find("token"), std::string::npos) << path;
  }
  auto post = anon.Post("/api/rank", R"({"item_id": 1, "skip": true})", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  auto wrong = client("0123").Get("/api/next");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto page = anon.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 302);
  EXPECT_EQ(page->get_header_value("Location"), "/login");
  // Public: the login form and its style sheet.
  EXPECT_EQ(anon.Get("/login")->status, 200);
  EXPECT_EQ(anon.Get("/style.css")->status, 200);
  EXPECT_EQ(anon.Get("/nope")->status, 404);
  EXPECT_TRUE(store->rankings().empty());
}

TEST_F(LabelApi, LoginSetsACookieThatOpensThePage) {
  auto anon = client();
  auto bad = anon.Post("/login", httplib::Params{{"token", "wrong"}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 303);
  EXPECT_EQ(bad->get_header_value("Location"), "/login#error");
  EXPECT_TRUE(bad->get_header_value("Set-Cookie").empty());

  auto ok = anon.Post("/login", httplib::Params{{"token", alice}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 303);
  std::string cookie = ok->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  std::string pair = cookie.substr(0, cookie.find(';'));
  auto page = anon.Get("/", httplib::Headers{{"Cookie", "other=1; " + pair}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->body, embedded_assets().at("index.html"));
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  auto me = anon.Get("/api/me", httplib::Headers{{"Cookie", pair}});
  EXPECT_EQ(body(me)["name"], "alice");
  auto js = anon.Get("/app.js", httplib::Headers{{"Cookie", pair}});
  EXPECT_EQ(js->status, 200);
  EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos);
}

TEST_F(LabelApi, NextRankProgressAndNoSecondRanking) {
  auto cli = client(alice);
  auto next = body(cli.Get("/api/next"));
  int64_t item_id = next["item_id"];
  auto item = store->item(item_id);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(next["prompt"], item->prompt);
  std::set<int64_t> shown, stored;
  for (const auto& c : next["candidates"]) shown.insert(c["id"].get<int64_t>());
  for (const auto& c : item->candidates) stored.insert(c.id);
  EXPECT_EQ(shown, stored);
  EXPECT_EQ(body(cli.Get("/api/next")), next);  // the shuffled order is stable across reloads

  json ranking = json::array();
  for (const auto& c : next["candidates"]) ranking.push_back(json::array({c["id"]}));
  json ties = json::array({json::array({ranking[0][0], ranking[1][0]}), ranking[2], ranking[3]});
  auto res = cli.Post("/api/rank", json{{"item_id", item_id}, {"ranking", ties}, {"flags", {"unsafe"}}}.dump(),
                      "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(body(res)["ok"], true);
  auto rs = store->rankings();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(json(rs[0].ordering), ties);
  EXPECT_TRUE(rs[0].time_spent_ms.has_value());  // measured from the /api/next that showed it
  EXPECT_EQ(body(cli.Get("/api/progress")), (json{{"done", 1}, {"total", 4}}));
  EXPECT_NE(body(cli.Get("/api/next"))["item_id"], item_id);

  auto again = cli.Post("/api/rank", json{{"item_id", item_id}, {"skip", true}}.dump(), "application/json");
  EXPECT_EQ(again->status, 409);
  EXPECT_EQ(store->rankings().size(), 1u);
  // bob may rank the same item.
  auto by_bob = client(bob).Post("/api/rank", json{{"item_id", item_id}, {"ranking", ranking}}.dump(),
                                 "application/json");
  EXPECT_EQ(by_bob->status, 200) << by_bob->body;
  EXPECT_EQ(store->rankings().size(), 2u);
}

TEST_F(LabelApi, BadRequestsAre400WithAMessageAndWriteNothing) {
  auto cli = client(alice);
  auto item = store->items().at(0);
  json ids = json::array();
  for (const auto& c : item.candidates) ids.push_back(c.id);
  json good = json::array();
  for (const auto& id : ids) good.push_back(json::array({id}));
  json other = store->items().at(1).candidates.at(0).id;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not valid JSON"},
      {"[1, 2]", "JSON object"},
      {json{{"ranking", good}}.dump(), "item_id"},
      {json{{"item_id", "1"}, {"ranking", good}}.dump(), "item_id"},
      {json{{"item_id", 424242}, {"ranking", good}}.dump(), "unknown item_id"},
      {json{{"item_id", item.id}}.dump(), "missing field \"ranking\""},
      {json{{"item_id", item.id}, {"ranking", ids}}.dump(), "groups"},  // flat list, not groups
      {json{{"item_id", item.id}, {"ranking", json::array({good[0], good[1]})}}.dump(), "not a permutation"},
      {json{{"item_id", item.id}, {"ranking", json::array({good[0], good[0], good[1], good[2], good[3]})}}.dump(),
       "twice"},
      {json{{"item_id", item.id}, {"ranking", json::array({good[0], good[1], good[2], json::array({other})})}}.dump(),
       "not a candidate"},
      {json{{"item_id", item.id}, {"ranking", good}, {"rank", 1}}.dump(), "unknown field \"rank\""},
      {json{{"item_id", item.id}, {"ranking", good}, {"flags", "unsafe"}}.dump(), "flags"},
      {json{{"item_id", item.id}, {"skip", "yes"}}.dump(), "skip"},
      // nlohmann throws out_of_range, not parse_error, for a number beyond double (found by fuzz_label_candidates):
      // it escaped the parse_error handler and became a 500.
      {R"({"item_id": 1e99999, "skip": true})", "not valid JSON"},
  };
  for (const auto& [request, needle] : cases) {
    auto res = cli.Post("/api/rank", request, "application/json");
    ASSERT_TRUE(res) << request;
    EXPECT_EQ(res->status, 400) << request << " -> " << res->body;
    std::string msg = body(res)["error"];
    EXPECT_NE(msg.find(needle), std::string::npos) << request << " -> " << msg;
  }
  EXPECT_TRUE(store->rankings().empty());
  EXPECT_EQ(body(cli.Get("/api/progress"))["done"], 0);
}

TEST_F(LabelApi, ScriptAndSqlTextIsReturnedAsText) {
  auto cli = client(alice);
  // Skip the three plain items to reach the one with markup in it.
  json next;
  for (int i = 0; i < 4; ++i) {
    next = body(cli.Get("/api/next"));
    if (next["prompt"].get<std::string>().find("<script>") != std::string::npos) break;
    cli.Post("/api/rank", json{{"item_id", next["item_id"]}, {"skip", true}}.dump(), "application/json");
  }
  auto res = cli.Get("/api/next");
  EXPECT_NE(res->get_header_value("Content-Type").find("application/json"), std::string::npos);
  EXPECT_EQ(next["prompt"], "Echo this: " + kXss);
  std::set<std::string> texts;
  for (const auto& c : next["candidates"]) texts.insert(c["text"].get<std::string>());
  EXPECT_EQ(texts, (std::set<std::string>{kXss, kSql, "fine"}));
  json ranking = json::array();
  for (const auto& c : next["candidates"]) ranking.push_back(json::array({c["id"]}));
  auto ok = cli.Post("/api/rank", json{{"item_id", next["item_id"]}, {"ranking", ranking}, {"flags", {kSql}}}.dump(),
                     "application/json");
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(store->rankings().back().flags.at(0), kSql);
  // The page puts server text into the DOM only as text.
  EXPECT_EQ(embedded_assets().at("app.js").find("innerHTML"), std::string::npos);
}

// 8 clients, two per annotator, race to rank 125 items each: 500 rankings acknowledged, each stored exactly once;
// a client that loses a race for an item gets 409 and moves on.
TEST(LabelApiLoad, EightConcurrentClientsStoreFiveHundredRankingsExactlyOnce) {
  TempDir dir;
  Store store(dir.file("db.sqlite"));
  store.add_items(make_items(125, 3));
  std::vector<std::string> tokens;
  for (int a = 0; a < 4; ++a) tokens.push_back(store.add_annotator("annotator" + std::to_string(a)));
  Server server(store);
  int port = server.bind("127.0.0.1", 0);
  std::thread serving([&] { server.serve(); });

  std::atomic<int> acked{0}, conflicts{0}, errors{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_connection_timeout(5);
      cli.set_read_timeout(30);
      cli.set_default_headers({{"Authorization", "Bearer " + tokens[c / 2]}});
      for (int step = 0; step < 1000; ++step) {  // bounded: 125 items need at most 250 requests per client
        auto next = cli.Get("/api/next");
        if (!next || next->status != 200) { ++errors; return; }
        json j = json::parse(next->body);
        if (j["item_id"].is_null()) return;
        json ranking = json::array();
        for (const auto& cand : j["candidates"]) ranking.push_back(json::array({cand["id"]}));
        auto res = cli.Post("/api/rank", json{{"item_id", j["item_id"]}, {"ranking", ranking}}.dump(),
                            "application/json");
        if (!res) { ++errors; return; }
        if (res->status == 200) ++acked;
        else if (res->status == 409) ++conflicts;
        else { ++errors; return; }
      }
    });
  }
  for (auto& t : clients) t.join();
  server.stop();
  serving.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(acked.load(), 500);
  auto rs = store.rankings();
  EXPECT_EQ(rs.size(), 500u);
  std::set<std::pair<std::string, int64_t>> unique;
  for (const auto& r : rs) unique.insert({r.annotator, r.item_id});
  EXPECT_EQ(unique.size(), 500u);
  std::cout << "500 rankings acknowledged, " << conflicts.load() << " lost races answered 409\n";
}

}  // namespace

TEST_F(LabelApi, MalformedHttpIsAnswered4xxAndTheServerGoesOn) {
  // What the fuzz target (tests/fuzz/fuzz_label_http.cpp) checks at random, here case by case.
  const std::string auth = "Authorization: Bearer " + alice + "\r\n";
  const std::string rank = R"({"item_id": 1, "skip": true})";
  struct Case {
    const char* what;
    std::string request;
    int low, high;  // expected status range
  } cases[] = {
      {"garbage request line", std::string("\x00\xff\xfe GARBAGE\r\n\r\n", 16), 400, 499},
      {"100 KB header", "GET /api/me HTTP/1.1\r\nHost: x\r\n" + auth + "X-Big: " + std::string(100000, 'a') +
                            "\r\n\r\n", 400, 499},
      {"text/plain ranking", "POST /api/rank HTTP/1.1\r\nHost: x\r\n" + auth +
                                 "Content-Type: text/plain\r\nContent-Length: " + std::to_string(rank.size()) +
                                 "\r\n\r\n" + rank, 415, 415},
      {"form-encoded ranking", "POST /api/rank HTTP/1.1\r\nHost: x\r\n" + auth +
                                   "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                                   std::to_string(rank.size()) + "\r\n\r\n" + rank, 415, 415},
      {"invalid UTF-8 in the JSON", "POST /api/rank HTTP/1.1\r\nHost: x\r\n" + auth +
                                        "Content-Type: application/json\r\nContent-Length: 31\r\n\r\n" +
                                        "{\"item_id\": 1, \"flags\": [\"\xff\xfe\"]}", 400, 400},
      {"bad percent-encoding", "GET /api/next?x=%ZZ%e2%82 HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 200, 200},
      {"bad token in a cookie", "GET /api/me HTTP/1.1\r\nHost: x\r\nCookie: rlhf_token=" + std::string(5000, 'z') +
                                    "\r\n\r\n", 401, 401},
      {"2 MiB body", "POST /api/rank HTTP/1.1\r\nHost: x\r\n" + auth +
                         "Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n" +
                         std::string(2097152, ' '), 413, 413},
  };
  for (const auto& c : cases) {
    const std::string answer = raw_http(port, c.request);
    const int status = status_of(answer);
    EXPECT_GE(status, c.low) << c.what << ": " << answer.substr(0, 300);
    EXPECT_LE(status, c.high) << c.what << ": " << answer.substr(0, 300);
  }
  EXPECT_TRUE(store->rankings().empty());  // none of them stored anything
  // A slow client (a byte every 2 ms) is still served, and so are others while it sends.
  std::thread slow([&] {
    const std::string answer =
        raw_http(port, "GET /api/me HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n", 1,
                 std::chrono::milliseconds(2));
    EXPECT_EQ(status_of(answer), 200) << answer.substr(0, 300);
  });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(client(bob).Get("/api/me")->status, 200);
  slow.join();
}

TEST(LabelStore, TokensAreStoredAsTheirSha256Only) {
  // FIPS 180-2, appendix B.1: SHA-256("abc").
  EXPECT_EQ(hash_token("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir dir;
  std::string token;
  {
    Store store(dir.file("db.sqlite"));
    token = store.add_annotator("alice");
    ASSERT_EQ(token.size(), 64u);
    EXPECT_EQ(store.annotator_by_token(token)->name, "alice");
    std::string wrong = token;
    wrong.back() = wrong.back() == '0' ? '1' : '0';
    EXPECT_FALSE(store.annotator_by_token(wrong));
    EXPECT_FALSE(store.annotator_by_token(hash_token(token)));  // the stored value is not a token
  }
  // What is on disk: the hash, and the token nowhere in the file.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("db.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT token FROM annotators", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), hash_token(token));
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::ifstream in(dir.file("db.sqlite"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find(token), std::string::npos);
}

TEST(LabelStore, AVersion1DatabaseHasItsTokensHashedWhenOpened) {
  TempDir dir;
  const std::string path = dir.file("db.sqlite");
  const std::string token = std::string(64, 'a');
  { Store store(path); }
  // Turn it into what version 1 wrote: the token itself in annotators.token.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql = "INSERT INTO annotators(name, token) VALUES('old', '" + token +
                          "'); UPDATE meta SET value = '1' WHERE key = 'schema_version';";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Store store(path);
  ASSERT_TRUE(store.annotator_by_token(token));
  EXPECT_EQ(store.annotator_by_token(token)->name, "old");
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT (SELECT token FROM annotators WHERE name = 'old'), "
                                   "(SELECT value FROM meta WHERE key = 'schema_version')", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), hash_token(token));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 1))), "2");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(LabelCandidates, ANumberBeyondDoubleIsAnErrorNamingTheLine) {
  // Found by fuzz_label_candidates: json::parse throws out_of_range (406) for 1e99999, which the reader's
  // parse_error handler let through without the file and line.
  TempDir dir;
  const std::string path = dir.file("c.jsonl");
  std::ofstream(path) << "{\"prompt\": \"q\", \"responses\": [\"a\", \"b\"]}\n{\"prompt\": 1e99999}\n";
  try {
    read_candidates_jsonl(path);
    FAIL() << "no error";
  } catch (const rlhf::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2"), std::string::npos) << e.what();
  }
}
