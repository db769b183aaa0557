// `rlhf label ...` as a user runs it (the built binary, RLHF_BIN): serve on a free port, kill -9 under load and
// restart with every acknowledged ranking intact; add-annotator, export, stats and auto from the command line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/http.h"
#include "label/store.h"
#include "test_label_util.h"

using namespace rlhf::label;
using rlhf::label::testing::TempDir;
using nlohmann::json;

namespace {

// Runs argv to completion; returns the exit status, stdout and stderr in out (merged).
int run(const std::vector<std::string>& argv, std::string& out) {
  std::string cmd;
  for (const auto& a : argv) cmd += "'" + a + "' ";  // test paths have no quotes
  cmd += "2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  out.clear();
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// `rlhf label serve ... --port 0` as a child process; the port is read from its "serving ... at http://H:P/" line.
struct ServeProcess {
  pid_t pid = -1;
  int port = 0;
  int out_fd = -1;

  explicit ServeProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      std::vector<std::string> all{RLHF_BIN, "label", "serve", "--port", "0"};
      all.insert(all.end(), args.begin(), args.end());
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_fd = fds[0];
    std::string text;
    const std::regex line(R"(serving \d+ items at http://127\.0\.0\.1:(\d+)/)");
    std::smatch m;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!std::regex_search(text, m, line)) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("no 'serving' line in 60 s: " + text);
      pollfd pfd{out_fd, POLLIN, 0};
      if (poll(&pfd, 1, 200) <= 0) continue;
      char buf[512];
      ssize_t n = read(out_fd, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("label serve exited before serving: " + text);
      text.append(buf, static_cast<size_t>(n));
    }
    port = std::stoi(m[1]);
  }
  void kill_with(int sig) {
    if (pid <= 0) return;
    kill(pid, sig);
    int status;
    waitpid(pid, &status, 0);
    pid = -1;
  }
  ~ServeProcess() {
    kill_with(SIGKILL);
    if (out_fd >= 0) close(out_fd);
  }
};

void write_candidates(const std::string& path, int n, int k) {
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    json responses = json::array();
    for (int j = 0; j < k; ++j) responses.push_back("answer " + std::to_string(j) + std::string(j + 1, '!'));
    out << json{{"prompt", "question " + std::to_string(i)}, {"responses", responses}}.dump() << "\n";
  }
}

TEST(LabelProcess, KillNineUnderLoadLosesNoAcknowledgedRanking) {
  TempDir dir;
  const std::string db = dir.file("db.sqlite"), cands = dir.file("cands.jsonl");
  write_candidates(cands, 150, 4);
  std::vector<std::string> tokens;
  std::string out;
  for (int a = 0; a < 4; ++a) {
    ASSERT_EQ(run({RLHF_BIN, "label", "add-annotator", "--db", db, "a" + std::to_string(a)}, out), 0) << out;
    tokens.push_back(trim(out));
    ASSERT_EQ(tokens.back().size(), 64u) << out;
  }
  ServeProcess server({"--db", db, "--candidates", cands});

  struct Acked {
    std::string annotator;
    int64_t item_id;
    json ranking;
  };
  std::mutex mutex;
  std::vector<Acked> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", server.port);
      cli.set_connection_timeout(2);
      cli.set_read_timeout(5);
      cli.set_default_headers({{"Authorization", "Bearer " + tokens[c]}});
      for (int step = 0; step < 200 && !stop; ++step) {  // bounded; the server dies long before
        auto next = cli.Get("/api/next");
        if (!next || next->status != 200) return;
        json j = json::parse(next->body);
        if (j["item_id"].is_null()) return;
        json ranking = json::array();
        for (auto it = j["candidates"].rbegin(); it != j["candidates"].rend(); ++it)
          ranking.push_back(json::array({(*it)["id"]}));
        auto res = cli.Post("/api/rank", json{{"item_id", j["item_id"]}, {"ranking", ranking}}.dump(),
                            "application/json");
        if (!res) return;  // killed mid-request: not acknowledged, may or may not be stored
        if (res->status != 200) return;
        std::lock_guard<std::mutex> lock(mutex);
        acked.push_back({"a" + std::to_string(c), j["item_id"].get<int64_t>(), ranking});
      }
    });
  }
  // Kill when about 120 rankings are in, with the clients still submitting.
  for (int i = 0; i < 600; ++i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (acked.size() >= 120) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  server.kill_with(SIGKILL);
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_GE(acked.size(), 120u) << "the load did not get going";

  {
    Store store(db, Store::Open::existing);
    std::map<std::pair<std::string, int64_t>, json> stored;
    for (const auto& r : store.rankings()) stored[{r.annotator, r.item_id}] = json(r.ordering);
    EXPECT_GE(stored.size(), acked.size());
    for (const auto& a : acked) {
      auto it = stored.find({a.annotator, a.item_id});
      ASSERT_NE(it, stored.end()) << "acknowledged ranking of item " << a.item_id << " by " << a.annotator << " lost";
      EXPECT_EQ(it->second, a.ranking);
    }
  }
  // The restarted server carries on from the same database.
  ServeProcess again({"--db", db});
  httplib::Client cli("127.0.0.1", again.port);
  cli.set_default_headers({{"Authorization", "Bearer " + tokens[0]}});
  auto progress = cli.Get("/api/progress");
  ASSERT_TRUE(progress);
  json p = json::parse(progress->body);
  EXPECT_EQ(p["total"], 150);
  size_t mine = 0;
  for (const auto& a : acked) mine += a.annotator == "a0";
  EXPECT_GE(p["done"].get<size_t>(), mine);
  std::cout << acked.size() << " rankings acknowledged before kill -9, all found after the restart\n";
}

TEST(LabelProcess, ExportStatsAndAutoFromTheCommandLine) {
  TempDir dir;
  const std::string db = dir.file("db.sqlite"), cands = dir.file("cands.jsonl");
  write_candidates(cands, 10, 3);
  std::string out;
  // Import through serve, then stop it.
  { ServeProcess server({"--db", db, "--candidates", cands}); }
  ASSERT_EQ(run({RLHF_BIN, "label", "auto", "--db", db, "--judge", "rule:length"}, out), 0) << out;
  EXPECT_NE(out.find("ranked 10 items"), std::string::npos) << out;
  ASSERT_EQ(run({RLHF_BIN, "label", "auto", "--db", db, "--judge", "rule:length", "--annotator", "noisy", "--noise",
                 "0.5", "--seed", "3"},
                out),
            0)
      << out;
  const std::string rankings = dir.file("rankings.jsonl"), pairs = dir.file("pairs.jsonl");
  ASSERT_EQ(run({RLHF_BIN, "label", "export", "--db", db, "--out", rankings}, out), 0) << out;
  std::ifstream in(rankings);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    if (j["annotator"] == "auto:rule:length") EXPECT_EQ(j["ranking"], json::parse("[2, 1, 0]"));  // longest first
    ++n;
  }
  EXPECT_EQ(n, 20);
  ASSERT_EQ(run({RLHF_BIN, "label", "export", "--db", db, "--out", pairs, "--format", "pairs"}, out), 0) << out;
  ASSERT_EQ(run({RLHF_BIN, "label", "stats", "--db", db, "--json"}, out), 0) << out;
  json stats = json::parse(out);
  EXPECT_EQ(stats["items_ranked"], 10);
  EXPECT_EQ(stats["agreement"]["items_ranked_twice"], 10);
  EXPECT_LT(stats["agreement"]["pairwise_agreement"].get<double>(), 1.0);

  // Errors name what is wrong.
  EXPECT_NE(run({RLHF_BIN, "label", "export", "--db", dir.file("missing.sqlite"), "--out", rankings}, out), 0);
  EXPECT_NE(out.find("missing.sqlite"), std::string::npos) << out;
  EXPECT_NE(run({RLHF_BIN, "label", "auto", "--db", db, "--judge", "rule:nope"}, out), 0);
  EXPECT_NE(out.find("unknown rule \"nope\""), std::string::npos) << out;
  EXPECT_NE(run({RLHF_BIN, "label", "export", "--db", db, "--out", rankings, "--format", "csv"}, out), 0);
  EXPECT_NE(out.find("rankings, pairs"), std::string::npos) << out;
}

}  // namespace
