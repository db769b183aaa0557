#include "dist/world.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef RLHF_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/error.h"

namespace rlhf::dist {

namespace {

using Millis = std::chrono::milliseconds;
constexpr int kHeartbeatMs = 1000;   // how often each rank says it is alive
constexpr int kDeadAfterMs = 5000;   // a heartbeat older than this: the rank is gone
constexpr int kDiagnoseMs = 3000;    // store timeout while working out whom to blame

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }
int64_t now_ms() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::string key(const std::string& what, int rank) { return "rlhf/" + what + "/" + std::to_string(rank); }

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

c10::intrusive_ptr<c10d::TCPStore> connect_store(const LaunchEnv& env, bool server, int64_t timeout_s) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = server;
  if (server) so.numWorkers = static_cast<size_t>(env.world_size);
  so.waitWorkers = false;  // rendezvous is the barrier below, with our own error
  so.timeout = Millis(timeout_s * 1000);
  try {
    return c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    fail("rank ", env.rank, ": cannot ", server ? "serve" : "reach", " the rendezvous store at ", env.master_addr, ":",
         env.master_port, " (", e.what(), "); ",
         server ? "is the port in use? set MASTER_PORT to a free one"
                : "is rank 0 running, and are MASTER_ADDR / MASTER_PORT the same on every rank?");
  }
}

}  // namespace

struct World::Impl {
  LaunchEnv env;
  DistOptions opts;
  std::string backend;
  torch::Device device = torch::kCPU;  // where the collectives' tensors live
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef RLHF_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int64_t seq = 0;  // collectives entered so far
  bool finished = false;

  // Heartbeat: its own store connection (a TCPStore client is not shared between threads).
  std::thread heart;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;

  void start_heartbeat() {
    heart = std::thread([this] {
      try {
        auto own = connect_store(env, /*server=*/false, opts.timeout_s);
        std::unique_lock<std::mutex> lock(mu);
        while (!stop) {
          own->set(key("alive", env.rank), bytes(std::to_string(now_ms())));
          cv.wait_for(lock, Millis(kHeartbeatMs), [this] { return stop; });
        }
      } catch (const std::exception& e) {
        // The store is gone (rank 0 ended); the next collective reports it with the rank to blame.
        std::cerr << "rank " << env.rank << ": heartbeat stopped: " << e.what() << "\n";
      }
    });
  }
  void stop_heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (heart.joinable()) heart.join();
  }

  // Runs one collective: records its number, issues it (issue() returns the Work objects), waits with the
  // timeout, and turns a failure into an error that names the rank to blame.
  template <class Issue>
  void run(const std::string& what, Issue issue) {
    ++seq;
    try {
      store->set(key("seq", env.rank), bytes(std::to_string(seq)));
      auto works = issue();
      for (auto& w : works) w->wait(Millis(opts.timeout_s * 1000));
    } catch (const std::exception& e) {
      throw Error(diagnose(what, e.what()));
    }
  }

  // Whom to blame for a failed collective. A peer's socket closes the moment it is killed, before its heartbeat
  // has had time to go stale, so this looks again for up to kDeadAfterMs + a beat before it gives up on naming one.
  std::string diagnose(const std::string& what, const std::string& cause) {
    // A timeout can be a hung peer; a closed connection is a dead one (whose heartbeat will go stale).
    const bool timed_out = cause.find("imed out") != std::string::npos;
    std::vector<std::string> blame;
    const auto deadline = std::chrono::steady_clock::now() + Millis(kDeadAfterMs + 2 * kHeartbeatMs);
    while (true) {
      blame = blame_ranks(timed_out);
      if (!blame.empty() || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(Millis(kHeartbeatMs / 2));
    }
    if (blame.empty()) blame.push_back("no other rank looks late or gone");
    std::ostringstream o;
    o << "rank " << env.rank << ": collective " << seq << " (" << what << ") failed: ";
    for (size_t i = 0; i < blame.size(); ++i) o << (i ? "; " : "") << blame[i];
    o << " [" << cause.substr(0, cause.find('\n')) << "]";
    return o.str();
  }

  std::vector<std::string> blame_ranks(bool timed_out) {
    std::vector<std::string> blame;
    try {
      store->setTimeout(Millis(kDiagnoseMs));
      const int64_t now = now_ms();
      for (int r = 0; r < env.world_size; ++r) {
        if (r == env.rank) continue;
        const std::string rs = "rank " + std::to_string(r);
        if (store->check({key("exit", r)})) {
          const auto how = text(store->get(key("exit", r)));
          if (how != "finished") blame.push_back(rs + " exited " + how + " (see its output)");
          continue;
        }
        const int64_t age = store->check({key("alive", r)}) ? now - std::stoll(text(store->get(key("alive", r)))) : -1;
        if (age < 0 || age > kDeadAfterMs) {
          blame.push_back(rs + " stopped: " +
                          (age < 0 ? std::string("it never sent a heartbeat")
                                   : "no heartbeat for " + std::to_string(age / 1000) + " s") +
                          " (killed, crashed, stopped or its machine is gone)");
          continue;
        }
        const int64_t their = store->check({key("seq", r)}) ? std::stoll(text(store->get(key("seq", r)))) : 0;
        if (timed_out && their < seq)
          blame.push_back(rs + " is alive but still before collective " + std::to_string(seq) + " (at " +
                          std::to_string(their) + "): hung, or slower than --dist-timeout " +
                          std::to_string(opts.timeout_s) + " s");
      }
    } catch (const std::exception& e) {
      blame = {env.rank == 0 ? std::string("the store could not be read (") + e.what() + ")"
                             : "rank 0 is gone (its store at " + env.master_addr + ":" +
                                   std::to_string(env.master_port) + " is unreachable; see rank 0's output)"};
    }
    return blame;
  }

  template <class F>
  auto with_pg(F f) {
#ifdef RLHF_NCCL
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }
};

namespace {
// Where this launch's store is, and whether this rank serves it: rank 0 serves at MASTER_PORT, or, under torchrun
// (whose agent already serves one there), every rank joins the agent's. libtorch 1.13's TCPStore cannot talk to
// torch 2's (2.x added a VALIDATE query ahead of the others, so every query number shifted): a 1.13 build under a
// torch 2 torchrun serves its own store one port up instead, at MASTER_PORT + 1.
#if TORCH_VERSION_MAJOR >= 2
constexpr bool kStoreSpeaksTorch2 = true;
#else
constexpr bool kStoreSpeaksTorch2 = false;
#endif
std::pair<LaunchEnv, bool> store_of(LaunchEnv env) {
  if (!env.agent_store) return {env, env.rank == 0};
  if (kStoreSpeaksTorch2) return {env, false};
  env.agent_store = false;
  env.master_port += 1;
  RLHF_CHECK(env.master_port < 65536, "MASTER_PORT ", env.master_port - 1, ": this libtorch ", TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR,
             " serves its own store at MASTER_PORT + 1 under torchrun, which is no TCP port");
  return {env, env.rank == 0};
}
}  // namespace

World::World() : impl_(std::make_unique<Impl>()) { impl_->backend = "none"; }

World::World(const LaunchEnv& env, const DistOptions& opts, torch::Device device)
    : env_(env), opts_(opts), impl_(std::make_unique<Impl>()) {
  opts.validate();
  auto& m = *impl_;
  bool serve = false;
  std::tie(m.env, serve) = store_of(env);  // the store's address; env_ keeps the launcher's
  m.opts = opts;
  m.device = device;
  if (!env.distributed()) {
    m.backend = "none";
    return;
  }
  std::string backend = opts.backend;
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
  m.store = connect_store(m.env, serve, opts.timeout_s);
  const auto timeout = Millis(opts.timeout_s * 1000);
  if (backend == "nccl") {
#ifdef RLHF_NCCL
    RLHF_CHECK(device.is_cuda(), "--dist-backend nccl needs the model on CUDA (--device cuda), not ", device.str());
    auto no = c10d::ProcessGroupNCCL::Options::create();
    no->timeout = timeout;
    m.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        c10::make_intrusive<c10d::PrefixStore>("nccl", m.store), env.rank, env.world_size, no);
#else
    fail("--dist-backend nccl: this libtorch has no NCCL (build against PyPI's CUDA torch), use --dist-backend gloo");
#endif
  } else {
    RLHF_CHECK(!device.is_cuda(), "--dist-backend gloo: the model is on ", device.str(),
               "; Gloo here reduces CPU tensors only (use --dist-backend nccl or auto)");
    auto go = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(env.master_addr))
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    try {
      m.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", m.store),
                                                            env.rank, env.world_size, go);
    } catch (const std::exception& e) {
      fail("rank ", env.rank, " of ", env.world_size, ": the Gloo process group did not form within --dist-timeout ",
           opts.timeout_s, " s (", e.what(), "); did every rank start, with the same WORLD_SIZE?");
    }
  }
  m.backend = backend;
  m.start_heartbeat();
  barrier("rendezvous");
  std::cerr << "dist: " << m.env.describe() << ", " << backend << "\n";
}

World::~World() {
  auto& m = *impl_;
  if (!distributed()) return;
  if (!m.finished && m.store) {
    // Tell the others how this rank left, so that their next collective names it.
    try {
      m.store->set(key("exit", env_.rank), bytes(std::uncaught_exceptions() > 0 ? "with an error" : "early"));
    } catch (const std::exception& e) {
      std::cerr << "rank " << env_.rank << ": could not record the exit in the store: " << e.what() << "\n";
    }
  }
  m.stop_heartbeat();
}

std::string World::backend() const { return impl_->backend; }

namespace {
// The tensors as the process group takes them: on the collective's device (NCCL: this rank's GPU), contiguous.
// Others (a CPU vector of metrics under NCCL) go through a copy, written back by unstage.
std::vector<torch::Tensor> stage(const std::vector<torch::Tensor>& tensors, torch::Device device) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.device() == device && t.is_contiguous() ? t : t.to(device).contiguous());
  return out;
}
void unstage(std::vector<torch::Tensor>& tensors, const std::vector<torch::Tensor>& staged) {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!staged[i].is_same(tensors[i])) tensors[i].copy_(staged[i]);
}
}  // namespace

void World::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (!distributed() || tensors.empty()) return;
  auto staged = stage(tensors, impl_->device);
  impl_->run(what, [&] {
    return impl_->with_pg([&](auto& pg) {
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (auto& t : staged) {
        std::vector<at::Tensor> one{t};
        works.push_back(pg.allreduce(one, c10d::AllreduceOptions()));
      }
      return works;
    });
  });
  unstage(tensors, staged);
}

void World::broadcast(std::vector<torch::Tensor>& tensors, int root, const std::string& what) {
  broadcast(tensors, std::vector<int>(tensors.size(), root), what);
}

void World::broadcast(std::vector<torch::Tensor>& tensors, const std::vector<int>& roots, const std::string& what) {
  if (!distributed() || tensors.empty()) return;
  RLHF_CHECK(roots.size() == tensors.size(), "broadcast (", what, "): ", roots.size(), " roots for ", tensors.size(),
             " tensors");
  auto staged = stage(tensors, impl_->device);
  impl_->run(what, [&] {
    return impl_->with_pg([&](auto& pg) {
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (size_t i = 0; i < staged.size(); ++i) {
        c10d::BroadcastOptions bo;
        bo.rootRank = roots[i];
        std::vector<at::Tensor> one{staged[i]};
        works.push_back(pg.broadcast(one, bo));
      }
      return works;
    });
  });
  unstage(tensors, staged);
}

void World::reduce_sum(std::vector<torch::Tensor>& tensors, const std::vector<int>& roots, const std::string& what) {
  if (!distributed() || tensors.empty()) return;
  RLHF_CHECK(roots.size() == tensors.size(), "reduce_sum (", what, "): ", roots.size(), " roots for ",
             tensors.size(), " tensors");
  auto staged = stage(tensors, impl_->device);
  impl_->run(what, [&] {
    return impl_->with_pg([&](auto& pg) {
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (size_t i = 0; i < staged.size(); ++i) {
        c10d::ReduceOptions ro;
        ro.reduceOp = c10d::ReduceOp::SUM;
        ro.rootRank = roots[i];
        std::vector<at::Tensor> one{staged[i]};
        works.push_back(pg.reduce(one, ro));
      }
      return works;
    });
  });
  unstage(tensors, staged);
}

void World::barrier(const std::string& what) {
  if (!distributed()) return;
  // A one-element all-reduce rather than pg.barrier(): NCCL's barrier guesses a device, this does not.
  auto t = torch::zeros({1}, torch::TensorOptions().device(impl_->device));
  std::vector<torch::Tensor> v{t};
  all_reduce_sum(v, what);
}

std::vector<std::string> World::all_gather_strings(const std::string& name, const std::string& value) {
  if (!distributed()) return {value};
  auto& m = *impl_;
  std::vector<std::string> out;
  m.run("exchange " + name, [&] {
    const std::string k = "rlhf/gather/" + name + "/";
    m.store->set(k + std::to_string(env_.rank), bytes(value));
    for (int r = 0; r < size(); ++r) out.push_back(text(m.store->get(k + std::to_string(r))));
    return std::vector<c10::intrusive_ptr<c10d::Work>>{};
  });
  return out;
}

void World::check_same(const std::string& what, const std::string& value) {
  if (!distributed()) return;
  const auto all = all_gather_strings("check/" + what, value);
  std::vector<int> differ;
  for (int r = 1; r < size(); ++r)
    if (all[r] != all[0]) differ.push_back(r);
  if (differ.empty()) return;
  std::ostringstream o;
  for (size_t i = 0; i < differ.size(); ++i) o << (i ? ", " : "") << differ[i];
  fail("mismatched launch: rank", differ.size() > 1 ? "s " : " ", o.str(), differ.size() > 1 ? " have" : " has",
       " other ", what, " than rank 0 (",
       all[differ[0]].substr(0, 80), " vs ", all[0].substr(0, 80),
       "): start every rank with the same command line and the same files");
}

void World::finish() {
  if (!distributed() || impl_->finished) return;
  barrier("finish");
  impl_->stop_heartbeat();
  impl_->finished = true;
  impl_->store->set(key("exit", env_.rank), bytes("finished"));
  barrier("finish, heartbeats stopped");  // rank 0 keeps its store up until every rank is past this
}

torch::Device rank_device(torch::Device requested, const LaunchEnv& env) {
  if (requested.is_cuda() && !requested.has_index() && env.distributed())
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  return requested;
}

}  // namespace rlhf::dist
