// Data parallel on c10d (src/dist/): the launchers' environments, the collectives (two ranks as two threads of
// this process, checked against sums done by hand), and the training commands as 2 processes × 1 thread against
// 1 process with the same global batch: the same losses and gradient norms to float tolerance and the same final
// weights (AdamW divides by sqrt(v), so the 1e-7 summation-order differences of a near-zero gradient move a
// weight by up to ~1e-5 of lr = 1e-3; 1e-4 absolute is far below one step's 1e-3). Faults: a rank killed with
// SIGKILL or stopped with SIGSTOP makes the other stop with an error naming it, within --dist-timeout; a
// mismatched launch stops at start; a checkpoint written by 2 ranks resumes in 1 and continues the same run.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "dist/grad_sync.h"
#include "dist/launch_env.h"
#include "dist/world.h"
#include "dist/zero.h"
#include "io/safetensors.h"
#include "test_cli_util.h"
#include "test_util.h"

using namespace rlhf;
using nlohmann::json;

namespace {

const std::string kModel = test::data("models/gpt2-e2e");

dist::GetEnv env_of(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

dist::LaunchEnv local_env(int rank, int world, int port) {
  dist::LaunchEnv e;
  e.rank = rank;
  e.world_size = world;
  e.local_rank = rank;
  e.local_world_size = world;
  e.master_port = port;
  e.launcher = "test";
  return e;
}

// Runs f(world) on `n` ranks, one thread each; rethrows the first failure.
void on_ranks(int n, const std::function<void(dist::World&)>& f, int64_t timeout_s = 30) {
  const int port = free_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        dist::DistOptions o;
        o.timeout_s = timeout_s;
        dist::World w(local_env(r, n, port), o, torch::kCPU);
        f(w);
        w.finish();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) ASSERT_EQ(errors[r], "") << "rank " << r;
}

std::vector<json> sft_lines() {
  std::vector<json> v;
  const char* animals[] = {"cat", "dog", "cow", "owl", "fox", "bee", "elk", "yak", "emu", "ant", "bat", "rat"};
  for (int i = 0; i < 12; ++i)  // different lengths, so the ranks' token counts differ
    v.push_back({{"prompt", "Name animal " + std::to_string(i) + ":"},
                 {"completion", " the " + std::string(animals[i]) + std::string(i % 4, '!')}});
  return v;
}

std::vector<json> pair_lines() {
  std::vector<json> v;
  for (int i = 0; i < 12; ++i)
    v.push_back({{"prompt", "Say something " + std::to_string(i)},
                 {"chosen", " good" + std::string(i % 3, '!')},
                 {"rejected", " bad bad" + std::string(i % 2, '?')}});
  return v;
}

struct RankResult {
  int rc = -1;
  std::string out;
};

// `rlhf ARGS` as n processes with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
// each in its own shell in tmp (so ARGS may use $RANK), after `prefix` (e.g. "cd r$RANK"); actions[r] (a shell
// command, may use $PID) runs against rank r's process once training has begun (out/metrics.jsonl has a line)
// and `delay` seconds have passed.
std::vector<RankResult> run_ranks(const test::TempDir& tmp, int n, const std::string& args,
                                  const std::map<int, std::string>& actions = {}, double delay = 0,
                                  const std::string& prefix = "") {
  const int port = free_port();
  const std::string dir = tmp.path.string();
  std::ostringstream sh;
  sh << "cd " << dir << " && export MASTER_ADDR=127.0.0.1 MASTER_PORT=" << port << " WORLD_SIZE=" << n
     << " LOCAL_WORLD_SIZE=" << n << " OMP_NUM_THREADS=1\n";
  for (int r = 0; r < n; ++r)
    // (no pgrep: procps may be missing; a watchdog kills a run that a failed kill would leave going forever)
    sh << "(export RANK=" << r << " LOCAL_RANK=" << r << "; " << (prefix.empty() ? ":" : prefix) << "; " << RLHF_BIN
       << " " << args << " > " << dir << "/rank" << r << ".log 2>&1 & p=$!; echo $p > " << dir << "/rank" << r
       << ".pid; (sleep 300; kill -9 $p) >/dev/null 2>&1 & w=$!; wait $p; echo $? > " << dir << "/rank" << r
       << ".rc; kill $w 2>/dev/null) &\n";
  for (const auto& [r, a] : actions)
    sh << "(sleep " << delay << "; for i in $(seq 600); do [ -s out/metrics.jsonl ] && break; sleep 0.2; done; "
       << "PID=$(cat " << dir << "/rank" << r << ".pid); " << a << ") &\n";
  sh << "wait\n";
  std::ofstream(tmp / "launch.sh") << sh.str();
  EXPECT_EQ(std::system(("bash " + tmp / "launch.sh").c_str()), 0);
  std::vector<RankResult> res(n);
  for (int r = 0; r < n; ++r) {
    std::ifstream rc(tmp / ("rank" + std::to_string(r) + ".rc"));
    if (!(rc >> res[r].rc)) res[r].rc = -1;
    std::ifstream lg(tmp / ("rank" + std::to_string(r) + ".log"));
    std::stringstream ss;
    ss << lg.rdbuf();
    res[r].out = ss.str();
  }
  return res;
}

std::vector<json> train_lines(const std::string& metrics) {
  std::vector<json> v;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);) {
    auto j = json::parse(l);
    if (j.value("split", "") == "train") v.push_back(j);
  }
  return v;
}

// Losses, metrics and gradient norms per step equal to 1e-5 relative; final weights (the safetensors file
// `weights` in each run's folder) to 1e-4 absolute.
void expect_same_run(const std::string& one, const std::string& two, const std::vector<std::string>& keys,
                     const std::string& weights = "model.safetensors") {
  const auto a = train_lines(one + "/metrics.jsonl"), b = train_lines(two + "/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i)
    for (const auto& k : keys) {
      const double x = a[i].at(k), y = b[i].at(k);
      EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(x))) << k << " at step " << a[i]["step"];
    }
  auto wa = io::load_safetensors(one + "/" + weights), wb = io::load_safetensors(two + "/" + weights);
  ASSERT_EQ(wa.size(), wb.size());
  double worst = 0;
  for (auto& [k, t] : wa) {
    ASSERT_TRUE(wb.count(k)) << k;
    worst = std::max(worst, (t.to(torch::kFloat64) - wb[k].to(torch::kFloat64)).abs().max().item<double>());
  }
  EXPECT_LT(worst, 1e-4);
  std::cerr << "max |w_1proc - w_2proc| = " << worst << "\n";
}

// `rlhf ARGS --out tmp/one` as 1 process, then `rlhf ARGS EXTRA --out tmp/NAME` as n ranks (run_ranks); every run must
// succeed (a fatal failure otherwise: callers return on HasFatalFailure). Returns the ranks' results.
std::vector<RankResult> one_then_ranks(const test::TempDir& tmp, const std::string& args, int n,
                                       const std::string& name, const std::string& extra = "") {
  std::vector<RankResult> r;
  [&] {
    std::string out;
    ASSERT_EQ(test::run_rlhf(args + " --out " + tmp / "one", &out), 0) << out;
    r = run_ranks(tmp, n, args + extra + " --out " + tmp / name);
    for (int k = 0; k < n; ++k) ASSERT_EQ(r[k].rc, 0) << r[k].out;
  }();
  return r;
}

}  // namespace

// ---------------------------------------------------------------- launchers

TEST(LaunchEnv, NoLauncherIsOneProcess) {
  auto e = dist::read_launch_env(env_of({}));
  EXPECT_EQ(e.world_size, 1);
  EXPECT_FALSE(e.distributed());
}

TEST(LaunchEnv, Torchrun) {
  auto e = dist::read_launch_env(env_of({{"RANK", "3"},
                                         {"WORLD_SIZE", "4"},
                                         {"LOCAL_RANK", "1"},
                                         {"LOCAL_WORLD_SIZE", "2"},
                                         {"MASTER_ADDR", "10.0.0.7"},
                                         {"MASTER_PORT", "29411"},
                                         {"TORCHELASTIC_RUN_ID", "x"},
                                         {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
  EXPECT_TRUE(e.agent_store);  // rank 0 connects to the agent's store instead of serving one
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.7");
  EXPECT_EQ(e.master_port, 29411);
  EXPECT_EQ(e.launcher, "torchrun");
}

TEST(LaunchEnv, MpirunAndSlurm) {
  auto m = dist::read_launch_env(env_of({{"OMPI_COMM_WORLD_RANK", "1"},
                                         {"OMPI_COMM_WORLD_SIZE", "2"},
                                         {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                         {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}));
  EXPECT_EQ(m.launcher, "mpirun");
  EXPECT_EQ(m.rank, 1);
  EXPECT_EQ(m.master_addr, "127.0.0.1");  // one node: loopback
  auto s = dist::read_launch_env(env_of({{"SLURM_PROCID", "5"},
                                         {"SLURM_NTASKS", "8"},
                                         {"SLURM_LOCALID", "1"},
                                         {"SLURM_TASKS_PER_NODE", "4(x2)"},
                                         {"SLURM_LAUNCH_NODE_IPADDR", "10.1.2.3"}}));
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.local_world_size, 4);
  EXPECT_EQ(s.master_addr, "10.1.2.3");
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  EXPECT_NE(test::error_of([] { dist::read_launch_env(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}})); })
                .find("rank 2 is not below the world size 2"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { dist::read_launch_env(env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}})); }).find("RANK=\"x\""),
            std::string::npos);
  EXPECT_NE(test::error_of([] { dist::read_launch_env(env_of({{"RANK", "0"}})); }).find("WORLD_SIZE is not set"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              dist::read_launch_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"}}));
            }).find("needs MASTER_ADDR"),
            std::string::npos);
}

// ---------------------------------------------------------------- collectives

TEST(DistCollectives, AllReduceBroadcastAndBucketsAgreeWithHandSums) {
  // Rank r's gradients: g_r = (r + 1) · base; the sum over 3 ranks is 6 · base.
  torch::manual_seed(0);
  std::vector<torch::Tensor> base;
  for (auto shape : std::vector<std::vector<int64_t>>{{5, 7}, {3}, {1000}, {2, 2, 2}, {64, 33}})
    base.push_back(torch::randn(shape));
  on_ranks(3, [&](dist::World& w) {
    // all_reduce_sum of doubles
    auto t = torch::tensor({1.0 * w.rank(), 10.0}, torch::kFloat64);
    std::vector<torch::Tensor> v{t};
    w.all_reduce_sum(v, "test");
    EXPECT_DOUBLE_EQ(t[0].item<double>(), 3.0);
    EXPECT_DOUBLE_EQ(t[1].item<double>(), 30.0);
    // gradients: small buckets (several per call) and the one-tensor-at-a-time reference
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<torch::Tensor> params;
      for (size_t i = 0; i < base.size(); ++i) {
        auto p = torch::zeros_like(base[i]).set_requires_grad(true);
        if (!(w.rank() == 1 && i == 1)) p.mutable_grad() = base[i] * (w.rank() + 1);  // rank 1 has no grad for one
        params.push_back(p);
      }
      if (pass == 0) dist::all_reduce_gradients(w, params, /*bucket_bytes=*/4096);
      else dist::all_reduce_gradients_reference(w, params);
      for (size_t i = 0; i < base.size(); ++i) {
        const double want = i == 1 ? 4.0 : 6.0;  // 1 + 3 where rank 1 contributed nothing
        EXPECT_TRUE(torch::allclose(params[i].grad(), base[i] * want, 1e-6, 1e-6)) << "pass " << pass << " tensor " << i;
      }
    }
    // broadcast of parameters from rank 0
    std::vector<torch::Tensor> ps{torch::full({4}, 1.0 + w.rank()), torch::full({3, 3}, 10.0 * (w.rank() + 1))};
    dist::broadcast_parameters(w, ps);
    EXPECT_TRUE(torch::equal(ps[0], torch::full({4}, 1.0)));
    EXPECT_TRUE(torch::equal(ps[1], torch::full({3, 3}, 10.0)));
    // every rank's string, in rank order
    auto all = w.all_gather_strings("names", "r" + std::to_string(w.rank()));
    EXPECT_EQ(all, (std::vector<std::string>{"r0", "r1", "r2"}));
  });
}

TEST(DistCollectives, BucketsFollowDtypeAndSize) {
  std::vector<torch::Tensor> p{torch::zeros({256}), torch::zeros({256}), torch::zeros({10}, torch::kFloat64),
                               torch::zeros({4096}), torch::zeros({1})};
  // 1 KiB buckets: [0] is full at 1 KiB -> closes; [1]; dtype change; [3] alone (16 KiB); [4]
  const auto b = dist::gradient_buckets(p, 1024);
  ASSERT_EQ(b.size(), 5u);
  EXPECT_EQ(b[0], std::vector<size_t>{0});
  const auto big = dist::gradient_buckets(p, 1 << 20);
  ASSERT_EQ(big.size(), 3u);  // float32 run, float64, float32 run
  EXPECT_EQ(big[0], (std::vector<size_t>{0, 1}));
  EXPECT_EQ(big[2], (std::vector<size_t>{3, 4}));
}

TEST(DistCollectives, ReduceAndBroadcastWithARootPerTensor) {
  on_ranks(3, [](dist::World& w) {
    const int r = w.rank();
    std::vector<torch::Tensor> t{torch::full({2}, r + 1.0), torch::full({3}, 10.0 * (r + 1))};
    w.reduce_sum(t, {2, 0}, "test reduce");
    if (r == 2) EXPECT_TRUE(torch::equal(t[0], torch::full({2}, 6.0)));  // 1 + 2 + 3 on its root
    if (r == 0) EXPECT_TRUE(torch::equal(t[1], torch::full({3}, 60.0)));
    std::vector<torch::Tensor> b{torch::full({2}, r * 1.0), torch::full({1}, r * 1.0)};
    w.broadcast(b, {1, 2}, "test broadcast");
    EXPECT_TRUE(torch::equal(b[0], torch::full({2}, 1.0)));
    EXPECT_TRUE(torch::equal(b[1], torch::full({1}, 2.0)));
  });
}

TEST(DistCollectives, Zero1OwnersBalanceTheElements) {
  // largest first to the least-loaded rank: 10 → 0, 7 → 1, 5 → 1, 3 → 0, 1 → 1 (loads 13 and 13)
  EXPECT_EQ(dist::zero_owners({3, 10, 1, 7, 5}, 2), (std::vector<int>{0, 0, 1, 1, 1}));
  EXPECT_EQ(dist::zero_owners({4, 4, 4}, 3), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(dist::zero_owners({5}, 2), (std::vector<int>{0}));  // a rank may own nothing
}

TEST(DistCollectives, CheckSameNamesTheRankThatDiffers) {
  const int port = free_port();
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      dist::DistOptions o;
      o.timeout_s = 30;
      dist::World w(local_env(r, 2, port), o, torch::kCPU);
      errors[r] = test::error_of([&] { w.check_same("data hash", r == 0 ? "abc" : "abd"); });
      w.finish();
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) EXPECT_NE(errors[r].find("rank 1 has other data hash than rank 0"), std::string::npos) << errors[r];
}

// ---------------------------------------------------------------- training commands, 2 processes vs 1

TEST(DistTrain, SftTwoProcessesEqualOne) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  const std::string args = "sft --model " + kModel + " --data " + tmp / "sft.jsonl" +
                           " --eval-fraction 0 --batch-size 4 --max-steps 6 --lr 1e-3 --seed 3 --threads 1 "
                           "--device cpu --log-every 1";
  auto r = one_then_ranks(tmp, args, 2, "two");
  if (HasFatalFailure()) return;
  EXPECT_NE(r[1].out.find("dist: rank 1 of 2"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp / "two/metrics.jsonl.rank1"));
  expect_same_run(tmp / "one", tmp / "two", {"loss", "grad_norm"});
}

TEST(DistTrain, SftWithGradAccumAndThreeRanks) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  const std::string args = "sft --model " + kModel + " --data " + tmp / "sft.jsonl" +
                           " --eval-fraction 0 --batch-size 3 --max-steps 2 --grad-accum 2 --lr 1e-3 --seed 5 "
                           "--threads 1 --device cpu --log-every 1";
  auto r = one_then_ranks(tmp, args, 3, "three");
  if (HasFatalFailure()) return;
  expect_same_run(tmp / "one", tmp / "three", {"loss", "grad_norm"});
}

TEST(DistTrain, RewardTwoProcessesEqualOne) {
  test::TempDir tmp;
  test::write_lines(tmp / "pairs.jsonl", pair_lines());
  const std::string args = "reward --model " + kModel + " --data " + tmp / "pairs.jsonl" + " --eval-fraction 0 --batch-size 4 "
                           "--max-steps 5 --lr 1e-3 --seed 1 --threads 1 --device cpu --log-every 1";
  auto r = one_then_ranks(tmp, args, 2, "two");
  if (HasFatalFailure()) return;
  expect_same_run(tmp / "one", tmp / "two", {"loss", "accuracy", "margin", "grad_norm"});
}

TEST(DistTrain, DpoTwoProcessesEqualOne) {
  test::TempDir tmp;
  test::write_lines(tmp / "pairs.jsonl", pair_lines());
  const std::string args = "dpo --model " + kModel + " --data " + tmp / "pairs.jsonl" + " --eval-fraction 0 --batch-size 4 "
                           "--max-steps 5 --lr 1e-3 --seed 1 --threads 1 --device cpu --log-every 1";
  auto r = one_then_ranks(tmp, args, 2, "two");
  if (HasFatalFailure()) return;
  expect_same_run(tmp / "one", tmp / "two", {"loss", "grad_norm"});
}

// A reward model (gpt2-e2e's body with a fresh score head) and 8 prompts of different lengths, for ppo / grpo.
std::string rl_setup(const test::TempDir& tmp) {
  test::save_reward_model(kModel, tmp / "rm");
  std::vector<json> prompts;
  for (int i = 0; i < 8; ++i) prompts.push_back({{"prompt", "The animal " + std::string(i % 3 + 1, 'x') + " says"}});
  test::write_lines(tmp / "prompts.jsonl", prompts);
  return " --prompts " + tmp / "prompts.jsonl" + " --policy " + kModel + " --device cpu --threads 1 --lr 1e-3";
}

// PPO with everything that needs the global batch: the running score moments (--normalize-score), whitened
// advantages, the adaptive β (KL_seq over all rows); 2 epochs × 2 minibatches × 2 micro-batches of 1 row, so
// most micro-batches have no row on one of the ranks.
TEST(DistTrain, PpoTwoProcessesEqualOne) {
  test::TempDir tmp;
  const std::string args = "ppo" + rl_setup(tmp) + " --reward " + tmp / "rm" +
                           " --batch-size 4 --iterations 3 --max-new-tokens 6 --ppo-epochs 2 --num-minibatches 2"
                           " --grad-accum 2 --critic-lr 1e-3 --adaptive-kl --normalize-score --whiten-rewards true"
                           " --samples-every 1 --seed 4";
  auto r = one_then_ranks(tmp, args, 2, "two");
  if (HasFatalFailure()) return;
  const std::vector<std::string> keys{"score", "kl", "beta", "reward", "policy_loss", "value_loss", "clip_frac",
                                      "approx_kl", "entropy", "response_length", "eos_frac", "grad_norm",
                                      "critic_grad_norm", "ratio_mean", "ratio_var"};
  expect_same_run(tmp / "one", tmp / "two", keys, "final/model.safetensors");
  // ZeRO-1 (both optimizers' moments sharded): the same run again.
  auto z = run_ranks(tmp, 2, args + " --zero 1 --out " + tmp / "zero");
  ASSERT_EQ(z[0].rc, 0) << z[0].out;
  ASSERT_EQ(z[1].rc, 0) << z[1].out;
  expect_same_run(tmp / "one", tmp / "zero", keys, "final/model.safetensors");
  auto c1 = io::load_safetensors(tmp / "one/checkpoint/critic/model.safetensors");
  auto c2 = io::load_safetensors(tmp / "two/checkpoint/critic/model.safetensors");
  double worst = 0;
  for (auto& [k, t] : c1) worst = std::max(worst, (t - c2.at(k)).abs().max().item<double>());
  EXPECT_LT(worst, 1e-4) << "critic weights";
  // rank 0 wrote the batch's first rows' samples; rank 1 wrote nothing
  std::ifstream s1(tmp / "one/samples.jsonl"), s2(tmp / "two/samples.jsonl");
  std::string l1, l2;
  ASSERT_TRUE(std::getline(s1, l1) && std::getline(s2, l2));
  EXPECT_EQ(json::parse(l1)["response"], json::parse(l2)["response"]);
  EXPECT_EQ(r[1].out.find("ppo config"), std::string::npos) << r[1].out;  // rank 0 reports
}

// GRPO on LoRA adapters with a rule reward: groups of 3 stay on one rank; the adapters' final weights agree.
TEST(DistTrain, GrpoLoraTwoProcessesEqualOne) {
  test::TempDir tmp;
  const std::string args = "ppo --algo grpo" + rl_setup(tmp) +
                           " --reward rule:length --batch-size 3 --group-size 3 --iterations 3 --max-new-tokens 6"
                           " --num-minibatches 3 --kl-coef 0.1 --lora-r 4 --lora-targets all-linear --seed 2";
  auto r = one_then_ranks(tmp, args, 2, "two");
  if (HasFatalFailure()) return;
  expect_same_run(tmp / "one", tmp / "two",
                  {"score", "kl", "reward", "policy_loss", "clip_frac", "approx_kl", "kl_loss", "entropy",
                   "response_length", "grad_norm"},
                  "final/adapter_model.safetensors");
}

// --zero 1: AdamW's moments sharded (dist/zero.h). The same run as 1 process; its checkpoint holds every tensor's
// moments (equal to the 1-process checkpoint's) and resumes in 1 process without --zero as the same run.
TEST(DistTrain, SftZero1EqualsOneAndItsCheckpointResumesWithout) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  const std::string args = "sft --model " + kModel + " --data " + tmp / "sft.jsonl" +
                           " --eval-fraction 0 --batch-size 4 --max-steps 6 --lr 1e-3 --seed 3 --threads 1 "
                           "--device cpu --log-every 1 --save-every 3";
  auto r = one_then_ranks(tmp, args, 2, "zero", " --zero 1");
  if (HasFatalFailure()) return;
  expect_same_run(tmp / "one", tmp / "zero", {"loss", "grad_norm"});
  const std::string ck1 = tmp / "one/checkpoints/step-000003", ckz = tmp / "zero/checkpoints/step-000003";
  auto o1 = io::load_safetensors(ck1 + "/optimizer.safetensors"), oz = io::load_safetensors(ckz + "/optimizer.safetensors");
  ASSERT_EQ(o1.size(), oz.size());
  for (auto& [k, t] : o1) {
    ASSERT_TRUE(oz.count(k)) << k;
    const double scale = t.abs().max().item<double>();
    EXPECT_LE((t.to(torch::kFloat64) - oz[k].to(torch::kFloat64)).abs().max().item<double>(), 1e-4 * scale + 1e-12) << k;
  }
  std::string out;
  ASSERT_EQ(test::run_rlhf(args + " --out " + tmp / "resumed" + " --resume " + ckz, &out), 0) << out;
  const auto a = train_lines(tmp / "one/metrics.jsonl"), b = train_lines(tmp / "resumed/metrics.jsonl");
  ASSERT_EQ(b.size(), 3u);  // steps 4..6
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_NEAR(a[i + 3]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << "step " << b[i]["step"];
}

TEST(DistTrain, CheckpointOfTwoRanksResumesInOne) {
  // 2 ranks write step 3's checkpoint; 1 process resumes it to step 6: the same run as 1 process throughout
  // (the optimizer state is whole on every rank, so the world size may change on resume).
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  const std::string args = "sft --model " + kModel + " --data " + tmp / "sft.jsonl" +
                           " --eval-fraction 0 --batch-size 4 --max-steps 6 --lr 1e-3 --seed 3 --threads 1 "
                           "--device cpu --log-every 1";
  ASSERT_EQ(test::run_rlhf(args + " --out " + tmp / "one"), 0);
  auto r = run_ranks(tmp, 2, args + " --out " + tmp / "two" + " --save-every 3");
  ASSERT_EQ(r[0].rc, 0) << r[0].out;
  const std::string ck = tmp / "two/checkpoints/step-000003";
  ASSERT_TRUE(std::filesystem::exists(ck + "/trainer_state.json"));
  std::string out;
  ASSERT_EQ(test::run_rlhf(args + " --out " + tmp / "resumed" + " --resume " + ck, &out), 0) << out;
  const auto a = train_lines(tmp / "one/metrics.jsonl"), b = train_lines(tmp / "resumed/metrics.jsonl");
  ASSERT_EQ(b.size(), 3u);  // steps 4..6
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_NEAR(a[i + 3]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << "step " << b[i]["step"];
}

// ---------------------------------------------------------------- faults

namespace {
// An endless 2-rank sft run in tmp (out/), with `flags` added, and actions[r] against rank r (run_ranks).
std::vector<RankResult> fault_run(const test::TempDir& tmp, const std::string& flags,
                                  const std::map<int, std::string>& actions, double delay) {
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  return run_ranks(tmp, 2,
                   "sft --model " + kModel + " --data sft.jsonl --out out --eval-fraction 0 --batch-size 4 "
                   "--epochs 100000 --lr 1e-5 --threads 1 --device cpu " + flags,
                   actions, delay);
}
}  // namespace

TEST(DistFaults, KilledRankIsNamedByTheOther) {
  test::TempDir tmp;
  const auto t0 = std::chrono::steady_clock::now();
  // Killed once the first checkpoint (step 2) is on disk.
  auto r = fault_run(tmp, "--dist-timeout 60 --save-every 2",
                     {{1, "for i in $(seq 600); do [ -d out/checkpoints ] && break; sleep 0.2; done; sleep 0.5; "
                          "kill -9 $PID"}},
                     /*delay=*/0);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r[0].rc, 1) << r[0].out;
  EXPECT_NE(r[0].out.find("rank 1 stopped: no heartbeat"), std::string::npos) << r[0].out;
  EXPECT_LT(s, 40) << "named within seconds, not after --dist-timeout";
  // The last checkpoint written before the kill is whole and resumes (in one process).
  std::string last;
  ASSERT_TRUE(std::filesystem::exists(tmp / "out/checkpoints")) << r[0].out;
  for (const auto& e : std::filesystem::directory_iterator(tmp / "out/checkpoints"))
    if (e.path().filename().string().rfind("step-", 0) == 0 && e.path().filename().string().size() == 11) last = std::max(last, e.path().string());
  ASSERT_FALSE(last.empty()) << "no checkpoint before the kill";
  const int step = std::stoi(last.substr(last.size() - 6));
  std::string out;
  EXPECT_EQ(test::run_rlhf("sft --model " + kModel + " --data " + tmp / "sft.jsonl" + " --out " + tmp / "resumed" +
                               " --eval-fraction 0 --batch-size 4 --lr 1e-5 --threads 1 --device cpu --max-steps " +
                               std::to_string(step + 1) + " --resume " + last,
                           &out),
            0)
      << out;
}

TEST(DistFaults, StoppedRankIsNamedAfterTheTimeout) {
  test::TempDir tmp;
  auto r = fault_run(tmp, "--dist-timeout 8", {{1, "kill -STOP $PID; sleep 14; kill -9 $PID"}}, /*delay=*/1);
  EXPECT_EQ(r[0].rc, 1) << r[0].out;
  EXPECT_NE(r[0].out.find("rank 1 stopped"), std::string::npos) << r[0].out;
}

TEST(DistFaults, RankZeroGoneIsNamed) {
  test::TempDir tmp;
  auto r = fault_run(tmp, "--dist-timeout 60", {{0, "kill -9 $PID"}}, /*delay=*/1);
  EXPECT_EQ(r[1].rc, 1) << r[1].out;
  EXPECT_NE(r[1].out.find("rank 0 is gone"), std::string::npos) << r[1].out;
}

TEST(DistFaults, MismatchedLaunchStopsAtStart) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  // Different --lr per rank: $RANK is expanded by each rank's shell.
  auto r = run_ranks(tmp, 2, "sft --model " + kModel + " --data sft.jsonl --out out --lr 1e-$((RANK+3)) --threads 1 "
                     "--device cpu");
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(r[k].rc, 1) << r[k].out;
    EXPECT_NE(r[k].out.find("rank 1's config differs from rank 0's at \"lr\""), std::string::npos) << r[k].out;
  }
  // Same flags, different bytes in the data file (a stale copy on one node): each rank in its own folder.
  for (int k = 0; k < 2; ++k) {
    std::filesystem::create_directories(tmp / ("r" + std::to_string(k)));
    auto lines = sft_lines();
    if (k == 1) lines.push_back({{"text", "one more line on rank 1"}});
    test::write_lines(tmp / ("r" + std::to_string(k) + "/sft.jsonl"), lines);
  }
  r = run_ranks(tmp, 2, "sft --model " + kModel + " --data sft.jsonl --out out --threads 1 --device cpu", {}, 0,
                "cd r$RANK");
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(r[k].rc, 1) << r[k].out;
    EXPECT_NE(r[k].out.find("rank 1 has other data files than rank 0"), std::string::npos) << r[k].out;
  }
}
