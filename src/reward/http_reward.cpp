// The HTTP reward client (cpp-httplib); see http_reward.h.
#include "reward/http_reward.h"

#include <chrono>
#include <thread>

#include "common/error.h"
#include "common/http.h"
#include "reward/protocol.h"

namespace rlhf::reward {

struct HttpReward::Impl {
  std::string url, base, path;  // url = base + path, base = scheme://host[:port]
  HttpOptions opts;
  std::unique_ptr<httplib::Client> client;
};

HttpReward::HttpReward(std::string url, HttpOptions options) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.url = std::move(url);
  m.opts = options;
  const auto scheme_end = m.url.find("://");
  RLHF_CHECK(scheme_end != std::string::npos, "--reward ", m.url, ": expected http://HOST:PORT/PATH");
  const auto path_start = m.url.find('/', scheme_end + 3);
  m.base = m.url.substr(0, path_start);
  m.path = path_start == std::string::npos ? "/" : m.url.substr(path_start);
  RLHF_CHECK(m.base.size() > scheme_end + 3, "--reward ", m.url, ": no host (expected http://HOST:PORT/PATH)");
  m.client = std::make_unique<httplib::Client>(m.base);
  RLHF_CHECK(m.client->is_valid(), "--reward ", m.url, ": not a valid server address");
  const auto sec = static_cast<time_t>(options.timeout_s);
  const auto usec = static_cast<time_t>((options.timeout_s - static_cast<double>(sec)) * 1e6);
  m.client->set_connection_timeout(sec, usec);
  m.client->set_read_timeout(sec, usec);
  m.client->set_write_timeout(sec, usec);
  m.client->set_keep_alive(true);
}

HttpReward::~HttpReward() = default;

Scores HttpReward::score(const Batch& batch) {
  auto& m = *impl_;
  const std::string who = "reward server " + m.url;
  const std::string body = make_request(batch).dump();
  std::string last_error;
  for (int attempt = 0; attempt <= m.opts.retries; ++attempt) {
    if (attempt > 0) {
      const double wait = m.opts.backoff_s * static_cast<double>(1 << std::min(attempt - 1, 20));
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    auto res = m.client->Post(m.path.c_str(), body, "application/json");
    if (!res) {
      last_error = "no answer (" + httplib::to_string(res.error()) + ")";
      continue;
    }
    if (res->status == 429 || res->status >= 500) {
      last_error = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
      continue;
    }
    RLHF_CHECK(res->status >= 200 && res->status < 300, who, ": HTTP ", res->status, ": ", res->body.substr(0, 200),
               " (hint: the server must accept POST ", m.path, " with a JSON body {\"query\", \"prompts\", \"labels\"})");
    return parse_answer(res->body, batch.size(), who);
  }
  fail(who, ": ", last_error, " after ", m.opts.retries + 1, " attempts (timeout ", m.opts.timeout_s,
       " s each; hint: is the server running? --reward-timeout and --reward-retries set the patience)");
}

}  // namespace rlhf::reward
