// HTTP server for the labelling page and its JSON API; the routes and their contract are in server.h.
#include "label/server.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "label/assets.h"
#include "common/http.h"

namespace rlhf::label {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kCookie = "rlhf_token";
constexpr size_t kMaxBody = 1 << 20;   // 1 MiB: a ranking is a few hundred bytes
constexpr size_t kServerThreads = 16;  // keep-alive connections each hold a thread while open

// splitmix64: a fixed mixing function, so the shuffled order is the same on every platform and run.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Candidates in an order that depends only on (annotator, item): a reload shows the same order, two annotators
// see different ones, and nobody sees the generation order (which could leak which sample came first).
std::vector<Candidate> shuffled(std::vector<Candidate> cands, int64_t annotator_id, int64_t item_id) {
  uint64_t seed = mix(mix(static_cast<uint64_t>(annotator_id)) ^ static_cast<uint64_t>(item_id));
  std::stable_sort(cands.begin(), cands.end(), [&](const Candidate& a, const Candidate& b) {
    return mix(seed ^ static_cast<uint64_t>(a.id)) < mix(seed ^ static_cast<uint64_t>(b.id));
  });
  return cands;
}

std::string mime_type(const std::string& name) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, json{{"error", message}});
}

// The token from `Authorization: Bearer X`, else from the rlhf_token cookie, else "".
std::string request_token(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (auth.compare(0, bearer.size(), bearer) == 0) return auth.substr(bearer.size());
  const std::string cookies = req.get_header_value("Cookie");
  size_t pos = 0;
  while (pos < cookies.size()) {
    size_t end = cookies.find(';', pos);
    if (end == std::string::npos) end = cookies.size();
    std::string part = cookies.substr(pos, end - pos);
    part.erase(0, part.find_first_not_of(' '));
    const std::string key = std::string(kCookie) + "=";
    if (part.compare(0, key.size(), key) == 0) return part.substr(key.size());
    pos = end + 1;
  }
  return "";
}

// Parses and checks the body of POST /api/rank. Unknown fields are an error so that typos do not pass silently.
Submission parse_submission(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw InvalidSubmission(cat("body is not valid JSON (", e.what(),
                                "); expected {\"item_id\": 7, \"ranking\": [[12], [14, 13]]} or "
                                "{\"item_id\": 7, \"skip\": true}"));
  }
  if (!j.is_object()) throw InvalidSubmission(cat("body must be a JSON object, got ", j.type_name()));
  for (const auto& [key, value] : j.items()) {
    (void)value;
    if (key != "item_id" && key != "ranking" && key != "skip" && key != "flags")
      throw InvalidSubmission(cat("unknown field \"", key, "\": allowed are item_id, ranking, skip, flags"));
  }
  Submission s;
  if (!j.contains("item_id") || !j["item_id"].is_number_integer())
    throw InvalidSubmission("field \"item_id\" must be an integer (the item_id from GET /api/next)");
  s.item_id = j["item_id"].get<int64_t>();
  if (j.contains("skip")) {
    if (!j["skip"].is_boolean()) throw InvalidSubmission("field \"skip\" must be true or false");
    s.skip = j["skip"].get<bool>();
  }
  if (j.contains("ranking")) {
    const json& r = j["ranking"];
    const char* shape = "field \"ranking\" must be a list of groups of candidate ids, best first, e.g. [[12], [14, 13]]";
    if (!r.is_array()) throw InvalidSubmission(shape);
    for (const auto& group : r) {
      if (!group.is_array()) throw InvalidSubmission(shape);
      std::vector<int64_t> ids;
      for (const auto& id : group) {
        if (!id.is_number_integer()) throw InvalidSubmission(shape);
        ids.push_back(id.get<int64_t>());
      }
      s.ordering.push_back(std::move(ids));
    }
  } else if (!s.skip) {
    throw InvalidSubmission("missing field \"ranking\" (or send \"skip\": true)");
  }
  if (j.contains("flags")) {
    if (!j["flags"].is_array()) throw InvalidSubmission("field \"flags\" must be a list of strings");
    for (const auto& f : j["flags"]) {
      if (!f.is_string()) throw InvalidSubmission("field \"flags\" must be a list of strings");
      s.flags.push_back(f.get<std::string>());
    }
  }
  return s;
}

}  // namespace

struct Server::Impl {
  Store& store;
  httplib::Server http;
  // When /api/next last showed an item to an annotator: the time spent is measured from it.
  std::mutex served_mutex;
  std::map<std::pair<int64_t, int64_t>, Clock::time_point> served_at;

  explicit Impl(Store& s) : store(s) {}

  std::optional<Annotator> authenticate(const httplib::Request& req) {
    return store.annotator_by_token(request_token(req));
  }

  void serve_asset(httplib::Response& res, const std::string& name) {
    const auto& assets = embedded_assets();
    auto it = assets.find(name);
    if (it == assets.end()) {
      send_error(res, 404, cat("no such file: ", name));
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(it->second, mime_type(name).c_str());
  }

  // Runs fn(annotator) when the request carries a valid token, else answers 401.
  template <typename Fn>
  httplib::Server::Handler api(Fn fn) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      auto who = authenticate(req);
      if (!who) {
        send_error(res, 401, "missing or unknown token: send 'Authorization: Bearer TOKEN' or log in at /login "
                             "(tokens come from `rlhf label add-annotator`)");
        return;
      }
      try {
        fn(*who, req, res);
      } catch (const InvalidSubmission& e) {
        send_error(res, 400, e.what());
      } catch (const AlreadyRanked& e) {
        send_error(res, 409, e.what());
      }
    };
  }

  void routes() {
    // Only these are public: the login form, its style sheet and the icon.
    for (const char* name : {"login.html", "style.css", "favicon.svg"}) {
      std::string path = std::string("/") + (std::string(name) == "login.html" ? "login" : name);
      http.Get(path, [this, name](const httplib::Request&, httplib::Response& res) { serve_asset(res, name); });
    }
    http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/favicon.svg"); });

    http.Post("/login", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string token = req.get_param_value("token");
      if (!store.annotator_by_token(token)) {
        res.set_redirect("/login#error", 303);
        return;
      }
      res.set_header("Set-Cookie", cat(kCookie, "=", token, "; Path=/; HttpOnly; SameSite=Strict"));
      res.set_redirect("/", 303);
    });
    http.Post("/logout", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Set-Cookie", cat(kCookie, "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
      res.set_redirect("/login", 303);
    });

    // The page: without a token a browser is sent to the login form.
    http.Get("/", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authenticate(req)) {
        res.set_redirect("/login", 302);
        return;
      }
      serve_asset(res, "index.html");
    });
    http.Get("/app.js", api([this](const Annotator&, const httplib::Request&, httplib::Response& res) {
      serve_asset(res, "app.js");
    }));

    http.Get("/api/me", api([](const Annotator& who, const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"name", who.name}});
    }));

    http.Get("/api/progress", api([this](const Annotator& who, const httplib::Request&, httplib::Response& res) {
      Progress p = store.progress(who.id);
      send_json(res, 200, json{{"done", p.done}, {"total", p.total}});
    }));

    http.Get("/api/next", api([this](const Annotator& who, const httplib::Request&, httplib::Response& res) {
      auto item = store.next_item(who.id);
      if (!item) {
        send_json(res, 200, json{{"item_id", nullptr}});
        return;
      }
      {
        std::lock_guard<std::mutex> lock(served_mutex);
        served_at.emplace(std::make_pair(who.id, item->id), Clock::now());  // keeps the first showing
      }
      json cands = json::array();
      for (const auto& c : shuffled(item->candidates, who.id, item->id)) cands.push_back({{"id", c.id}, {"text", c.text}});
      send_json(res, 200, json{{"item_id", item->id}, {"prompt", item->prompt}, {"candidates", cands}});
    }));

    http.Post("/api/rank", api([this](const Annotator& who, const httplib::Request& req, httplib::Response& res) {
      // JSON only: a form or text/plain POST (what a cross-site page can send without a preflight) is refused.
      std::string type = req.get_header_value("Content-Type").substr(0, 16);
      std::transform(type.begin(), type.end(), type.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (type != "application/json") {
        send_error(res, 415, "POST /api/rank takes a JSON body: send 'Content-Type: application/json'");
        return;
      }
      Submission s = parse_submission(req.body);
      const auto key = std::make_pair(who.id, s.item_id);
      {
        std::lock_guard<std::mutex> lock(served_mutex);
        auto it = served_at.find(key);
        if (it != served_at.end())
          s.time_spent_ms =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - it->second).count();
      }
      int64_t id = store.submit(who.id, s);
      {
        std::lock_guard<std::mutex> lock(served_mutex);
        served_at.erase(key);
      }
      send_json(res, 200, json{{"ok", true}, {"id", id}});
    }));

    // Headers on every response: the page loads only its own files, and nothing is sniffed or framed.
    http.set_default_headers({
        {"Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
    });
    http.set_payload_max_length(kMaxBody);
    http.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty()) send_error(res, res.status, cat("HTTP ", res.status, " for ", req.method, " ", req.path));
    });
    // Anything else thrown (a database error) is a 500 whose message is logged and returned.
    http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string msg = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        msg = e.what();
      }
      std::cerr << "rlhf label: " << req.method << " " << req.path << ": " << msg << std::endl;
      send_error(res, 500, msg);
    });
  }
};

Server::Server(Store& store, ServerOptions options) : impl_(std::make_unique<Impl>(store)) {
  impl_->routes();
  impl_->http.set_read_timeout(std::chrono::milliseconds(options.read_timeout_ms));
  impl_->http.set_keep_alive_timeout(options.keep_alive_s);
}

Server::~Server() = default;

int Server::bind(const std::string& host, int port) {
  int bound = port == 0 ? impl_->http.bind_to_any_port(host) : (impl_->http.bind_to_port(host, port) ? port : -1);
  RLHF_CHECK(bound > 0, "cannot listen on ", host, ":", port,
             " (hint: is the port in use? --port 0 picks a free one)");
  return bound;
}

void Server::serve() {
  RLHF_CHECK(impl_->http.listen_after_bind(), "the labelling server stopped with an error");
}

void Server::stop() {
  // stop() before the accept loop runs would be lost; wait for it, bounded.
  for (int i = 0; i < 500 && !impl_->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->http.stop();
}

bool Server::running() const { return impl_->http.is_running(); }

}  // namespace rlhf::label
