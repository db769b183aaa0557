// `--reward http://HOST:PORT/PATH`: a remote reward function in OpenRLHF's protocol (protocol.h). One POST of
// JSON per batch, with a timeout; a connection error, a timeout, 429 or 5xx is retried up to `retries` times,
// waiting backoff·2^k before retry k+1; any other failure (4xx, not JSON, the wrong count, NaN) stops at once
// with an error naming the server.
#pragma once
#include <memory>
#include <string>

#include "reward/batch.h"

namespace rlhf::reward {

struct HttpOptions {
  double timeout_s = 60;  // connect, read and write, each
  int retries = 3;
  double backoff_s = 1;
};

class HttpReward {
 public:
  HttpReward(std::string url, HttpOptions options);  // throws when the URL is malformed
  ~HttpReward();
  HttpReward(const HttpReward&) = delete;
  HttpReward& operator=(const HttpReward&) = delete;
  Scores score(const Batch& batch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlhf::reward
