// libFuzzer target: the labelling server (label/server.h) as a client reaches it: raw bytes over TCP to a server
// running in this process on a temporary SQLite store with one annotator and three items. Input: the bytes of
// one or more HTTP requests; "@T@" in the input becomes the annotator's token, so that the fuzzer gets past the
// 401 (the seeds, from tests/fuzz/make_seeds.py, are valid requests of every route, with bodies and cookies).
// Checks: every answer is a well-formed HTTP/1.1 status line below 500 (bad requests, bodies, JSON, rankings,
// cookies and encodings are 4xx), the server answers or closes within 5 s, and no sanitizer report.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "fuzz_util.h"
#include "label/server.h"
#include "label/store.h"

namespace {

struct Live {
  std::unique_ptr<rlhf::label::Store> store;
  std::unique_ptr<rlhf::label::Server> server;
  std::thread thread;
  int port = 0;
  std::string token;
};

Live& live() {
  static Live* l = [] {
    auto* l = new Live;  // never destroyed: the server thread runs until the process exits
    const std::string db = fuzz::scratch_path("fuzz_label_http", ".sqlite");
    std::filesystem::remove(db);
    l->store = std::make_unique<rlhf::label::Store>(db);
    l->token = l->store->add_annotator("fuzz");
    std::vector<rlhf::label::NewItem> items;
    for (int i = 0; i < 3; ++i) {
      rlhf::label::NewItem it;
      it.prompt = "prompt " + std::to_string(i);
      it.responses = {"a", "b", "c"};
      items.push_back(it);
    }
    l->store->add_items(items);
    // Short timeouts: an incomplete request (most mutated inputs) is dropped after 20 ms instead of 5 s, and a
    // connection ends after the requests it carries.
    rlhf::label::ServerOptions opts;
    opts.read_timeout_ms = 20;
    opts.keep_alive_s = 0;
    l->server = std::make_unique<rlhf::label::Server>(*l->store, opts);
    l->port = l->server->bind("127.0.0.1", 0);
    l->thread = std::thread([l] { l->server->serve(); });
    return l;
  }();
  return *l;
}

[[noreturn]] void finding(const std::string& what, const std::string& answer) {
  std::fprintf(stderr, "fuzz_label_http: %s\n--- answer ---\n%s\n", what.c_str(), answer.substr(0, 2000).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Live& l = live();
  std::string request(reinterpret_cast<const char*>(data), size);
  for (size_t p; (p = request.find("@T@")) != std::string::npos;) request.replace(p, 3, l.token);

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(l.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Closing with a reset (linger 0) leaves no TIME_WAIT behind: thousands of connections a second would otherwise
  // use up the ephemeral ports within seconds.
  linger no_wait{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_wait, sizeof no_wait);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    finding(std::string("cannot connect: ") + std::strerror(errno), "");
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early on a bad request
    sent += static_cast<size_t>(n);
  }
  // No half-close: cpp-httplib writes no answer to a client that has shut down its side (it takes it for gone),
  // so the harness waits for the server to close the connection instead.
  std::string answer;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) == 0) finding("no answer within 5 s", answer);
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // Each status line (pipelined requests get one each) is HTTP/1.1 NNN with NNN < 500.
  for (size_t p = 0; (p = answer.find("HTTP/1.1 ", p)) != std::string::npos; p += 9) {
    if (p != 0 && answer.compare(p - 2, 2, "\r\n") != 0 && answer.compare(p - 1, 1, "\n") != 0) continue;
    if (answer.size() < p + 12) finding("truncated status line", answer);
    if (answer[p + 9] >= '5') finding("a 5xx answer", answer);
  }
  if (!answer.empty() && answer.compare(0, 9, "HTTP/1.1 ") != 0) finding("not an HTTP/1.1 answer", answer);
  return 0;
}
