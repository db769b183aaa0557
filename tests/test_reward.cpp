// Reward functions from outside the binary (src/reward): the rules against hand-computed values, the protocol
// against OpenRLHF's field names (openrlhf/utils/remote_rm_utils.py: POST {"query", "prompts", "labels"}, answer
// {"rewards"}), the HTTP client against a real server in this process (retries, timeouts, bad answers), the
// subprocess against real shell processes (restart once, timeout, bad output), and their combination.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "common/error.h"
#include "common/http.h"
#include "reward/exec_reward.h"
#include "reward/http_reward.h"
#include "reward/options.h"
#include "reward/protocol.h"
#include "reward/reward_set.h"
#include "reward/rules.h"

using namespace rlhf::reward;
using nlohmann::json;

namespace {

Batch make_batch(std::vector<std::string> responses, std::vector<std::optional<std::string>> labels = {}) {
  Batch b;
  for (size_t i = 0; i < responses.size(); ++i) {
    b.prompts.push_back("Q" + std::to_string(i) + ":");
    b.responses.push_back(responses[i]);
    b.queries.push_back(b.prompts.back() + responses[i]);
    b.labels.push_back(i < labels.size() ? labels[i] : std::nullopt);
    b.sources.push_back("prompts.jsonl:" + std::to_string(i + 1));
  }
  return b;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// A reward server in this process: handler decides each answer; counts requests.
struct Server {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::atomic<int> requests{0};
  json last_request;
  std::mutex mutex;
  explicit Server(std::function<void(const json&, httplib::Response&, int)> handler) {
    svr.Post("/get_reward", [this, handler](const httplib::Request& req, httplib::Response& res) {
      const int n = ++requests;
      json j = json::parse(req.body);
      {
        std::lock_guard<std::mutex> lock(mutex);
        last_request = j;
      }
      handler(j, res, n);
    });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Server() {
    svr.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/get_reward"; }
};

void answer(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

// rewards[i] = length of query i (so order errors show).
json lengths(const json& req) {
  json r = json::array();
  for (const auto& q : req["query"]) r.push_back(static_cast<double>(q.get<std::string>().size()));
  return {{"rewards", r}};
}

HttpOptions fast(int retries = 3, double timeout = 5) { return {timeout, retries, /*backoff_s=*/0.01}; }

}  // namespace

// ---------------------------------------------------------------- rules

TEST(RewardRules, VerifiableRulesAgainstHandValues) {
  auto numeric = find_rule("numeric"), exact = find_rule("exact-match");
  EXPECT_EQ(numeric("", "The answer is 42.", std::string("42")), 1.0);
  EXPECT_EQ(numeric("", "3 + 4 = 7", std::string("7")), 1.0);       // the last number counts
  EXPECT_EQ(numeric("", "7, no wait, 8", std::string("7")), 0.0);
  EXPECT_EQ(numeric("", "It is 1,234.50 dollars", std::string("1234.5")), 1.0);
  EXPECT_EQ(numeric("", "-3", std::string("-3")), 1.0);
  EXPECT_EQ(numeric("", "0.3", std::string("0.30000001")), 1.0);  // |a − b| ≤ 1e-6·max(1, |b|)
  EXPECT_EQ(numeric("", "0.31", std::string("0.3")), 0.0);
  EXPECT_EQ(numeric("", "no digits", std::string("5")), 0.0);
  EXPECT_EQ(numeric("", "5", std::string("5")), 1.0);
  EXPECT_THROW(numeric("", "5", std::nullopt), NeedsLabel);
  EXPECT_NE(message_of([&] { numeric("", "5", std::string("five")); }).find("not a number"), std::string::npos);
  EXPECT_EQ(exact("", "  Paris\n", std::string("Paris")), 1.0);
  EXPECT_EQ(exact("", "paris", std::string("Paris")), 0.0);
  EXPECT_THROW(exact("", "x", std::nullopt), NeedsLabel);
  EXPECT_EQ(*last_number("a 1 b 22 c 333"), 333.0);
  EXPECT_FALSE(last_number("none").has_value());
}

TEST(RewardRules, TextRules) {
  EXPECT_EQ(find_rule("length")("", "héllo", std::nullopt), 6.0);  // bytes
  EXPECT_EQ(find_rule("short")("", "abc", std::nullopt), -3.0);
  EXPECT_EQ(find_rule("regex:^\\d+$")("", "123", std::nullopt), 1.0);
  EXPECT_EQ(find_rule("regex:^\\d+$")("", "12a", std::nullopt), 0.0);
  EXPECT_EQ(find_rule("regex:\\p{Han}")("", "说", std::nullopt), 1.0);  // Unicode classes
  EXPECT_EQ(find_rule("contains:please")("", "yes please", std::nullopt), 1.0);
  EXPECT_THROW(find_rule("regex:(unclosed"), rlhf::Error);
  EXPECT_NE(message_of([] { find_rule("nope"); }).find("numeric"), std::string::npos);  // lists the known rules
}

// ---------------------------------------------------------------- specs and the protocol

TEST(RewardSpec, ParsesEveryForm) {
  EXPECT_EQ(parse_spec("runs/rm").kind, SpecKind::model);
  EXPECT_EQ(parse_spec("reward:runs/rm").arg, "runs/rm");
  EXPECT_EQ(parse_spec("http://h:1/x").kind, SpecKind::http);
  EXPECT_EQ(parse_spec("https://h/x").kind, SpecKind::http);
  EXPECT_EQ(parse_spec("exec:python3 r.py").arg, "python3 r.py");
  EXPECT_EQ(parse_spec("rule:regex:a:b").arg, "regex:a:b");
  EXPECT_THROW(parse_spec("ftp://h/x"), rlhf::Error);
  EXPECT_THROW(parse_spec("exec:"), rlhf::Error);
  RewardOptions o;
  o.specs = {"rule:length", "rule:short"};
  o.weights = {1};
  EXPECT_NE(message_of([&] { o.validate(); }).find("one weight per --reward"), std::string::npos);
}

TEST(RewardProtocol, RequestHasOpenRLHFFieldsAndAnswersAreChecked) {
  auto b = make_batch({"a", "bb"}, {std::string("1"), std::nullopt});
  b.iteration = 3;
  const json req = make_request(b);
  EXPECT_EQ(req["query"], json({"Q0:a", "Q1:bb"}));
  EXPECT_EQ(req["prompts"], json({"Q0:", "Q1:"}));
  EXPECT_EQ(req["labels"], json({"1", ""}));  // OpenRLHF sends "" for a prompt without a label
  EXPECT_EQ(req["iteration"], 3);
  auto s = parse_answer(R"({"rewards": [1, 2.5], "extra_logs": {"acc": [1, 0], "const": 7}})", 2, "srv");
  EXPECT_EQ(s.values, (std::vector<double>{1, 2.5}));
  EXPECT_EQ(s.extra["acc"], (std::vector<double>{1, 0}));
  EXPECT_EQ(s.extra["const"], (std::vector<double>{7, 7}));
  EXPECT_NE(message_of([] { parse_answer(R"({"rewards": [1]})", 2, "srv"); }).find("answered 1 \"rewards\" for 2"),
            std::string::npos);
  EXPECT_NE(message_of([] { parse_answer(R"({"rewards": [NaN, 1]})", 2, "srv"); }).find("not JSON"), std::string::npos);
  EXPECT_NE(message_of([] { parse_answer(R"({"rewards": [null, 1]})", 2, "srv"); }).find("not a number"),
            std::string::npos);
  // nlohmann refuses an overflowing number while parsing: an error either way, never an infinite reward.
  const auto inf = message_of([] { parse_answer(R"({"rewards": [1e999, 1]})", 2, "srv"); });
  EXPECT_TRUE(inf.find("not JSON") != std::string::npos || inf.find("not finite") != std::string::npos) << inf;
  EXPECT_NE(message_of([] { parse_answer(R"([1, 2])", 2, "srv"); }).find("needs a \"rewards\" list"), std::string::npos);
}

// ---------------------------------------------------------------- HTTP

TEST(RewardHttp, ScoresInOrderAndSendsTheProtocol) {
  Server srv([](const json& req, httplib::Response& res, int) { answer(res, lengths(req)); });
  HttpReward h(srv.url(), fast());
  auto b = make_batch({"x", "yyy"}, {std::string("5"), std::string("6")});
  EXPECT_EQ(h.score(b).values, (std::vector<double>{4, 6}));
  std::lock_guard<std::mutex> lock(srv.mutex);
  EXPECT_EQ(srv.last_request["labels"], json({"5", "6"}));
  EXPECT_EQ(srv.last_request["responses"], json({"x", "yyy"}));
}

TEST(RewardHttp, RetriesServerErrorsWithBackoffThenSucceeds) {
  Server srv([](const json& req, httplib::Response& res, int n) {
    if (n <= 2) answer(res, {{"error", "busy"}}, n == 1 ? 503 : 429);
    else answer(res, lengths(req));
  });
  HttpReward h(srv.url(), fast(/*retries=*/2));
  EXPECT_EQ(h.score(make_batch({"ab"})).values, (std::vector<double>{5}));
  EXPECT_EQ(srv.requests, 3);
}

TEST(RewardHttp, GivesUpAfterTheRetriesNamingTheServer) {
  Server srv([](const json&, httplib::Response& res, int) { answer(res, {{"error", "down"}}, 500); });
  HttpReward h(srv.url(), fast(/*retries=*/2));
  const auto msg = message_of([&] { h.score(make_batch({"a"})); });
  EXPECT_NE(msg.find(srv.url()), std::string::npos) << msg;
  EXPECT_NE(msg.find("after 3 attempts"), std::string::npos) << msg;
  EXPECT_EQ(srv.requests, 3);
}

TEST(RewardHttp, ClientErrorsAndBadAnswersStopAtOnce) {
  Server srv([](const json& req, httplib::Response& res, int n) {
    if (n == 1) answer(res, {{"error", "no"}}, 400);
    else if (n == 2) answer(res, {{"rewards", {1, 2, 3}}});  // 3 for 1 query
    else res.set_content("<html>oops</html>", "text/html");
  });
  HttpReward h(srv.url(), fast(/*retries=*/3));
  EXPECT_NE(message_of([&] { h.score(make_batch({"a"})); }).find("HTTP 400"), std::string::npos);
  EXPECT_NE(message_of([&] { h.score(make_batch({"a"})); }).find("answered 3"), std::string::npos);
  EXPECT_NE(message_of([&] { h.score(make_batch({"a"})); }).find("not JSON"), std::string::npos);
  EXPECT_EQ(srv.requests, 3);  // none of them retried
}

TEST(RewardHttp, TimesOutAndReportsAServerThatIsDown) {
  Server slow([](const json& req, httplib::Response& res, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    answer(res, lengths(req));
  });
  HttpReward h(slow.url(), fast(/*retries=*/0, /*timeout=*/0.3));
  const auto t0 = std::chrono::steady_clock::now();
  const auto msg = message_of([&] { h.score(make_batch({"a"})); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.4) << msg;
  EXPECT_NE(msg.find("timeout 0.3 s"), std::string::npos) << msg;

  int port = 0;
  {
    Server gone([](const json&, httplib::Response&, int) {});
    port = gone.port;
  }  // closed: nothing listens on port any more
  HttpReward d("http://127.0.0.1:" + std::to_string(port) + "/get_reward", fast(/*retries=*/1));
  const auto down = message_of([&] { d.score(make_batch({"a"})); });
  EXPECT_NE(down.find("no answer"), std::string::npos) << down;
  EXPECT_NE(down.find("after 2 attempts"), std::string::npos) << down;
}

// ---------------------------------------------------------------- subprocess

TEST(RewardExec, AnswersEachRequestLine) {
  // rewards = [number of the request line, 2·that]: a long-lived process, state kept between batches.
  ExecReward e("n=0; while read l; do n=$((n+1)); echo \"{\\\"rewards\\\": [$n, $((2*n))]}\"; done", 5);
  EXPECT_EQ(e.score(make_batch({"a", "b"})).values, (std::vector<double>{1, 2}));
  EXPECT_EQ(e.score(make_batch({"a", "b"})).values, (std::vector<double>{2, 4}));
  EXPECT_EQ(e.restarts(), 0);
}

TEST(RewardExec, RestartsOnceThenGivesUp) {
  // Answers one request, then exits: the second batch restarts it (once); the third finds it dead again.
  ExecReward e("read l; echo '{\"rewards\": [1]}'; exit 3", 5);
  EXPECT_EQ(e.score(make_batch({"a"})).values, (std::vector<double>{1}));
  EXPECT_EQ(e.score(make_batch({"a"})).values, (std::vector<double>{1}));
  EXPECT_EQ(e.restarts(), 1);
  const auto msg = message_of([&] { e.score(make_batch({"a"})); });
  EXPECT_NE(msg.find("exited with status 3 again after its restart"), std::string::npos) << msg;
}

TEST(RewardExec, TimeoutKillsItAndBadOutputIsAnError) {
  ExecReward slow("read l; sleep 30", 0.3);
  const auto t0 = std::chrono::steady_clock::now();
  const auto msg = message_of([&] { slow.score(make_batch({"a"})); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_NE(msg.find("no answer within 0.3 s"), std::string::npos) << msg;

  ExecReward chatty("read l; echo 'debug: got it'; cat", 5);
  EXPECT_NE(message_of([&] { chatty.score(make_batch({"a"})); }).find("not JSON"), std::string::npos);
}

// ---------------------------------------------------------------- combination

TEST(RewardSetTest, WeightedSumNamesAndErrors) {
  RewardOptions o;
  o.specs = {"rule:length", "rule:numeric", "rule:length"};
  o.weights = {1, 10, -0.5};
  RewardSet set(o, "cpu");
  EXPECT_EQ(set.names(), (std::vector<std::string>{"length", "numeric", "length_2"}));
  EXPECT_TRUE(set.text_only());
  auto b = make_batch({"7", "x 3"}, {std::string("7"), std::string("4")});
  b.iteration = 5;
  auto c = set.score(b);
  // s = 1·len + 10·[correct] − 0.5·len
  EXPECT_EQ(c.total, (std::vector<double>{1 + 10 - 0.5, 3 + 0 - 1.5}));
  ASSERT_EQ(c.metrics.size(), 3u);
  EXPECT_EQ(c.metrics[0], (std::pair<std::string, double>{"reward/length", 2.0}));
  EXPECT_EQ(c.metrics[1], (std::pair<std::string, double>{"reward/numeric", 0.5}));
  b.labels[1] = std::nullopt;
  const auto msg = message_of([&] { set.score(b); });
  EXPECT_NE(msg.find("iteration 5: --reward rule:numeric"), std::string::npos) << msg;
  EXPECT_NE(msg.find("prompts.jsonl:2 has none"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--label-key"), std::string::npos) << msg;
}
