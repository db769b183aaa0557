// The labelling server: the page (embedded files) and the JSON API over a Store, with cpp-httplib.
//
// Auth: every page and API call needs an annotator's token, sent as `Authorization: Bearer TOKEN` or as the
// `rlhf_token` cookie that POST /login (form field `token`) sets. Only /login, /style.css and the icon are public.
//
// API (JSON; errors are {"error": "message"} with 400 bad input, 401 no/unknown token, 404 unknown path,
// 409 already ranked, 413 a body over 1 MiB, 415 a POST /api/rank that is not Content-Type: application/json):
//   GET  /api/next      -> {"item_id": 7, "prompt": "...", "candidates": [{"id": 12, "text": "..."}, ...]}
//                          the next item this annotator has not ranked or skipped, candidates shuffled (stable per
//                          annotator and item); {"item_id": null} when none is left.
//   POST /api/rank      {"item_id": 7, "ranking": [[12], [14, 13], [15]], "flags": ["unsafe"]}  (best -> worst,
//                       a group of several is a tie) or {"item_id": 7, "skip": true} -> {"ok": true, "id": 31}
//   GET  /api/progress  -> {"done": n, "total": m}
//   GET  /api/me        -> {"name": "alice"}
#pragma once
#include <memory>
#include <string>

#include "label/store.h"

namespace rlhf::label {

struct ServerOptions {
  // A client silent for this long in the middle of a request is disconnected: a slow or stalled client holds one
  // of the server's 16 threads only this long.
  int read_timeout_ms = 5000;
  // How long an idle keep-alive connection waits for its next request (0: the next request must already be
  // there, as with pipelining).
  int keep_alive_s = 5;
};

class Server {
 public:
  explicit Server(Store& store, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0: any free port) and returns the port. Throws when it cannot bind.
  int bind(const std::string& host, int port);
  // Serves until stop(); call after bind().
  void serve();
  // Stops serve() from another thread; waits (at most 5 s) for serve() to have started, so it cannot be missed.
  void stop();
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlhf::label
