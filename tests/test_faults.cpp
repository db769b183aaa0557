// Faults in every trainer (issue 19, part 3), on the gpt2-e2e fixture, CPU, one thread per process:
//  - sft, reward, dpo, ppo and grpo are SIGKILLed at seeded random points (after the k-th metrics line, plus a
//    random delay of a few ms: mid-step, mid-checkpoint or at start-up) and deliberately while a checkpoint and
//    while the final model are being written (the test polls for the writer's hidden temporary folder and kills
//    at once), then continued with --resume from the newest checkpoint left (from scratch when none is): the final
//    weights equal an uninterrupted run's bit for bit, and every checkpoint or model folder visible under its final
//    name after a kill loads (model, optimizer moments, RNG state, trainer_state.json).
//  - A full disk while checkpointing (a small tmpfs, or RLIMIT_FSIZE where mounting is refused) stops the run with
//    an error naming the file, and the previous checkpoint still loads and resumes to the uninterrupted weights.
//  - A model folder rewritten over and over (save_model, and save_checkpoint as the trainers' final save) while
//    other readers load it (`rlhf forward` processes, load_model in a thread) is always seen whole: the old or the
//    new model, never a missing folder, a mix of the two or a half-written file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "io/safetensors.h"
#include "model/model.h"
#include "test_cli_util.h"
#include "test_util.h"
#include "train/checkpoint.h"

using namespace rlhf;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kModel = test::data("models/gpt2-e2e");

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> split_args(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> v;
  for (std::string a; in >> a;) v.push_back(a);
  return v;
}

// `rlhf ARGS` as a child process (stdout + stderr into `log`); fsize_limit > 0: RLIMIT_FSIZE in the child, with
// SIGXFSZ ignored so that a write past it fails with EFBIG as a full disk fails with ENOSPC.
pid_t spawn_rlhf(const std::string& args, const std::string& log, rlim_t fsize_limit = 0) {
  auto words = split_args(args);
  std::vector<char*> argv{const_cast<char*>(RLHF_BIN)};
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (fsize_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl{fsize_limit, fsize_limit};
      ::setrlimit(RLIMIT_FSIZE, &rl);
    }
    ::execv(RLHF_BIN, argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Exit code of a finished child; -signal when a signal ended it.
int wait_rlhf(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

bool exited(pid_t pid, int* rc) {
  int st = 0;
  if (::waitpid(pid, &st, WNOHANG) != pid) return false;
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  return true;
}

int run_to_end(const std::string& args, const std::string& log) { return wait_rlhf(spawn_rlhf(args, log)); }

int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

// A hidden temporary folder of a checkpoint or model being written (".NAME.tmp-PID", "NAME.tmp-PID") in `dir`.
bool has_temp_entry(const fs::path& dir, const std::string& needle = ".tmp-") {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find(needle) != std::string::npos) return true;
  return false;
}

bool same_tensors(const std::string& a, const std::string& b, std::string* why) {
  auto x = io::load_safetensors(a), y = io::load_safetensors(b);
  if (x.size() != y.size()) return *why = "tensor counts differ", false;
  for (auto& [k, t] : x) {
    if (!y.count(k)) return *why = k + " missing in " + b, false;
    if (!torch::equal(t, y[k]))
      return *why = k + " differs: max |d| = " + std::to_string((t - y[k]).abs().max().item<double>()), false;
  }
  return true;
}

// Every checkpoint (trainer_state.json) folder: model (and critic) load, optimizer moments and RNG state read,
// trainer_state.json parses. Returns its step.
int64_t check_checkpoint(const fs::path& dir) {
  load_model(dir.string());
  if (fs::exists(dir / "critic")) load_model((dir / "critic").string());
  for (const char* f : {"optimizer.safetensors", "rng_state.safetensors"}) io::load_safetensors((dir / f).string());
  if (fs::exists(dir / "critic_optimizer.safetensors")) io::load_safetensors((dir / "critic_optimizer.safetensors").string());
  return train::load_checkpoint(dir.string(), {}, /*restore_rng=*/false).step;
}

// How one trainer runs here: its command (without --out), where its checkpoints and final weights are.
struct Trainer {
  std::string name, args;
  bool rl = false;        // ppo/grpo: OUT/checkpoint (one folder, --resume without a path), final in OUT/final
  int64_t total = 0;      // metrics lines of a whole run (steps or iterations)
  int64_t save_every = 0;
  std::string final_weights(const std::string& out) const {
    return out + (rl ? "/final/model.safetensors" : "/model.safetensors");
  }
};

// After a kill: every folder under its final name loads; returns the --resume flags that continue the run ("" for
// a fresh start; "done" when the final model is complete and written).
std::string check_and_resume_flags(const Trainer& tr, const std::string& out) {
  if (tr.rl) {
    const fs::path ck = fs::path(out) / "checkpoint";
    if (fs::exists(out + "/final")) load_model(out + "/final");
    if (!fs::exists(ck)) return "";
    EXPECT_TRUE(train::is_checkpoint(ck.string())) << ck << " exists but is not a whole checkpoint";
    check_checkpoint(ck);
    return "--resume";
  }
  if (train::is_checkpoint(out)) {  // the final save completed: OUT is the last checkpoint
    EXPECT_EQ(check_checkpoint(out), tr.total);
    return "done";
  }
  std::string last;
  if (fs::exists(out + "/checkpoints"))
    for (const auto& e : fs::directory_iterator(out + "/checkpoints")) {
      const auto name = e.path().filename().string();
      if (name[0] == '.') continue;  // a temporary folder a kill left behind
      EXPECT_TRUE(train::is_checkpoint(e.path().string())) << e.path() << " is visible but not a whole checkpoint";
      EXPECT_EQ(check_checkpoint(e.path()), std::stoll(name.substr(5))) << e.path();
      last = std::max(last, e.path().string());
    }
  return last.empty() ? "" : "--resume " + last;
}

struct KillPoint {
  std::string what;   // for the log
  int64_t after_lines = 0;  // wait for this many metrics lines ...
  int delay_ms = 0;         // ... then this long (random kills)
  bool in_write = false;    // ... then for a temporary folder to appear, and kill at once
  std::vector<std::pair<std::string, std::string>> watch;  // (folder, name part) of the temporary folder
};

// One kill point: a fresh run into `out`, killed there, every visible folder checked, resumed to the end;
// returns false (with a message) when the final weights differ from `reference`.
void kill_and_resume(const Trainer& tr, const std::string& out, const KillPoint& kp, const std::string& reference) {
  fs::create_directories(out);
  const std::string log = out + ".log";
  const auto t0 = Clock::now();
  const pid_t pid = spawn_rlhf(tr.args + " --out " + out, log);
  int rc = 0;
  bool gone = false, temp_seen = false;
  const std::string metrics = out + "/metrics.jsonl";
  while (!(gone = exited(pid, &rc)) && kp.after_lines > 0 && count_lines(metrics) < kp.after_lines)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (!gone && kp.in_write) {
    while (!(gone = exited(pid, &rc))) {
      for (const auto& [dir, needle] : kp.watch) temp_seen = temp_seen || has_temp_entry(dir, needle);
      if (temp_seen) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  } else if (!gone) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kp.delay_ms));
    gone = exited(pid, &rc);
  }
  if (!gone) {
    ::kill(pid, SIGKILL);
    rc = wait_rlhf(pid);
  }
  const double killed_at = seconds_since(t0);
  ASSERT_TRUE(rc == -SIGKILL || rc == 0) << tr.name << " " << kp.what << ": rc " << rc << "\n" << read_file(log);
  bool left_temp = false;
  for (const auto& [dir, needle] : kp.watch) left_temp = left_temp || has_temp_entry(dir, needle);
  if (kp.in_write) {
    EXPECT_TRUE(left_temp) << tr.name << " " << kp.what << ": the kill came after the write had finished";
  }
  const auto flags = check_and_resume_flags(tr, out);
  std::cout << "[faults] " << tr.name << ": " << kp.what << ": " << (rc == 0 ? "finished before the kill" : "killed")
            << " at " << killed_at << " s (" << count_lines(metrics) << " metrics lines"
            << (left_temp ? ", a temporary folder left" : "") << "), then "
            << (flags.empty() ? "from scratch" : flags == "done" ? "nothing to resume (final saved)" : flags) << "\n";
  if (flags != "done") {
    const std::string log2 = out + ".resume.log";
    ASSERT_EQ(run_to_end(tr.args + " --out " + out + " " + flags, log2), 0)
        << tr.name << " " << kp.what << ": resume failed\n" << read_file(log2);
  }
  std::string why;
  EXPECT_TRUE(same_tensors(reference, tr.final_weights(out), &why))
      << tr.name << " " << kp.what << ": final weights differ from the uninterrupted run: " << why;
}

// The uninterrupted run, then 3 seeded random kill points, one in a checkpoint write and one in the final save.
void faults_of(const Trainer& tr, uint64_t seed) {
  test::TempDir tmp;
  const auto t0 = Clock::now();
  const std::string ref_out = tmp / "ref";
  ASSERT_EQ(run_to_end(tr.args + " --out " + ref_out, tmp / "ref.log"), 0) << read_file(tmp / "ref.log");
  const double t_ref = seconds_since(t0);
  ASSERT_EQ(count_lines(ref_out + "/metrics.jsonl"), tr.total);
  const std::string reference = tmp / "reference.safetensors";
  fs::copy_file(tr.final_weights(ref_out), reference);

  std::mt19937_64 rng(seed);
  std::vector<KillPoint> kps;
  for (int i = 0; i < 3; ++i) {
    KillPoint kp;
    kp.after_lines = std::uniform_int_distribution<int64_t>(0, tr.total - 1)(rng);
    kp.delay_ms = std::uniform_int_distribution<int>(0, 40)(rng);
    kp.what = "random kill " + std::to_string(i + 1) + " (" + std::to_string(kp.after_lines) + " lines + " +
              std::to_string(kp.delay_ms) + " ms)";
    kps.push_back(kp);
  }
  const std::string ck_parent = tr.rl ? "" : "/checkpoints";
  KillPoint mid;  // the second checkpoint's write: the first one is whole and is what --resume continues from
  mid.what = "kill while writing checkpoint 2";
  mid.after_lines = 2 * tr.save_every;
  mid.in_write = true;
  KillPoint fin;  // the final model's write (sft/reward/dpo: OUT itself, in OUT's parent; ppo: OUT/final in OUT)
  fin.what = "kill while writing the final model";
  fin.after_lines = tr.total;
  fin.in_write = true;
  for (size_t i = 0; i < kps.size() + 2; ++i) {
    const std::string out = tmp / ("k" + std::to_string(i)) + "/out";
    KillPoint kp = i < kps.size() ? kps[i] : i == kps.size() ? mid : fin;
    const std::string parent = fs::path(out).parent_path().string();
    if (i < kps.size()) kp.watch = {{out + ck_parent, ".tmp-"}, {parent, ".tmp-"}};
    else if (i == kps.size()) kp.watch = {{out + ck_parent, ".tmp-"}};
    else kp.watch = {tr.rl ? std::pair<std::string, std::string>{out, "final.tmp-"} : std::pair<std::string, std::string>{parent, ".out.tmp-"}};
    kill_and_resume(tr, out, kp, reference);
  }
  std::cout << "[faults] " << tr.name << ": uninterrupted run " << t_ref << " s; 5 kill points + resumes, all in "
            << seconds_since(t0) << " s\n";
}

std::vector<json> sft_lines() {
  std::vector<json> v;
  const char* animals[] = {"cat", "dog", "cow", "owl", "fox", "bee", "elk", "yak", "emu", "ant", "bat", "rat"};
  for (int i = 0; i < 12; ++i)
    v.push_back({{"prompt", std::string("Name animal ") + std::to_string(i) + ":"},
                 {"completion", std::string(" the ") + animals[i]}});
  v.push_back({{"text", "plain text for the language model"}});
  v.push_back({{"text", "and one more line"}});
  return v;
}

std::vector<json> pair_lines(int n) {
  std::vector<json> v;
  for (int i = 0; i < n; ++i)
    v.push_back({{"prompt", "Say something " + std::to_string(i % 5)},
                 {"chosen", " good good good " + std::to_string(i)},
                 {"rejected", " bad bad bad"}});
  return v;
}

// Files every trainer test shares: the data and (for ppo/grpo) a reward model.
struct Inputs {
  test::TempDir tmp;
  std::string sft, pairs, prompts, rm;
  Inputs() {
    sft = tmp / "sft.jsonl";
    pairs = tmp / "pairs.jsonl";
    prompts = tmp / "prompts.jsonl";
    rm = tmp / "rm";
    test::write_lines(sft, sft_lines());
    test::write_lines(pairs, pair_lines(16));
    std::ofstream(prompts) << "{\"prompt\": \"The cat\"}\n{\"prompt\": \"Hello there\"}\n"
                           << "{\"prompt\": \"Once upon\"}\n{\"prompt\": \"Name an animal:\"}\n";
    test::save_reward_model(kModel, rm);
  }
  // 14 examples, batch 2: 7 batches an epoch; 9 steps cross an epoch; checkpoints at 3, 6, 9 (and the final).
  Trainer sft_trainer() const {
    return {"sft",
            "sft --model " + kModel + " --data " + sft + " --eval-fraction 0 --batch-size 2 --max-steps 9 --lr 1e-3 " +
                "--warmup-steps 2 --weight-decay 0.1 --seed 3 --save-every 3 --threads 1 --device cpu",
            false, 9, 3};
  }
  Trainer reward_trainer() const {
    return {"reward",
            "reward --model " + kModel + " --data " + pairs + " --eval-fraction 0 --batch-size 4 --max-steps 9 " +
                "--lr 1e-3 --seed 3 --save-every 3 --threads 1 --device cpu",
            false, 9, 3};
  }
  Trainer dpo_trainer() const {
    return {"dpo",
            "dpo --model " + kModel + " --data " + pairs + " --eval-fraction 0 --batch-size 4 --max-steps 9 " +
                "--lr 1e-3 --seed 3 --save-every 3 --threads 1 --device cpu",
            false, 9, 3};
  }
  std::string rl_common() const {
    return " --policy " + kModel + " --reward " + rm + " --prompts " + prompts +
           " --max-new-tokens 6 --ppo-epochs 2 --num-minibatches 2 --lr 1e-3 --iterations 6 --save-every 2 --seed 5"
           " --threads 1 --device cpu";
  }
  Trainer ppo_trainer() const {
    return {"ppo", "ppo --algo ppo --batch-size 4 --critic-lr 1e-3 --adaptive-kl" + rl_common(), true, 6, 2};
  }
  Trainer grpo_trainer() const {
    return {"grpo", "ppo --algo grpo --batch-size 2 --group-size 2" + rl_common(), true, 6, 2};
  }
};

Inputs& inputs() {
  static Inputs in;
  return in;
}

}  // namespace

TEST(Faults, SftKilledAnywhereResumesBitIdentical) { faults_of(inputs().sft_trainer(), 1901); }
TEST(Faults, RewardKilledAnywhereResumesBitIdentical) { faults_of(inputs().reward_trainer(), 1902); }
TEST(Faults, DpoKilledAnywhereResumesBitIdentical) { faults_of(inputs().dpo_trainer(), 1903); }
TEST(Faults, PpoKilledAnywhereResumesBitIdentical) { faults_of(inputs().ppo_trainer(), 1904); }
TEST(Faults, GrpoKilledAnywhereResumesBitIdentical) { faults_of(inputs().grpo_trainer(), 1905); }

// ---- a full disk while checkpointing

namespace {
// A tmpfs of `mib` MiB at `dir` when this process may mount one (root outside a locked-down container; set
// RLHF_TEST_NO_MOUNT=1 to try the RLIMIT_FSIZE fallback anyway); unmounted when the object goes away.
struct SmallDisk {
  std::string dir, refused;
  bool mounted = false;
  SmallDisk(const std::string& d, int mib) : dir(d) {
    fs::create_directories(dir);
    const std::string opts = "size=" + std::to_string(mib) + "m";
    if (std::getenv("RLHF_TEST_NO_MOUNT")) {
      refused = "RLHF_TEST_NO_MOUNT is set";
      return;
    }
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted) refused = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
};
}  // namespace

TEST(Faults, FullDiskWhileCheckpointingNamesTheFileAndKeepsThePreviousCheckpoint) {
  test::TempDir tmp;
  const Trainer tr = inputs().sft_trainer();
  // A checkpoint of gpt2-e2e is ~23 MB (model 6.5, tokenizer 3.6, AdamW moments 13): 36 MiB hold the first and
  // not the second. Without a mount, RLIMIT_FSIZE of 8 MiB lets the model file through and stops the moments'.
  SmallDisk disk(tmp / "disk", 36);
  const std::string out = disk.mounted ? disk.dir + "/out" : tmp / "out";
  const rlim_t fsize = disk.mounted ? 0 : 8u << 20;
  std::cout << "[faults] full disk: "
            << (disk.mounted ? "a 36 MiB tmpfs" : "RLIMIT_FSIZE 8 MiB (mounting a tmpfs was refused: " + disk.refused + ")")
            << "\n";
  // 1. Until the first checkpoint is whole (then killed: the disk is not yet full).
  fs::create_directories(out);
  const std::string step3 = out + "/checkpoints/step-000003";
  pid_t pid = spawn_rlhf(tr.args + " --out " + out, tmp / "a.log");
  int rc = 0;
  bool gone = false;
  while (!(gone = exited(pid, &rc)) && !fs::exists(step3)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!gone) {
    ::kill(pid, SIGKILL);
    wait_rlhf(pid);
  }
  ASSERT_TRUE(train::is_checkpoint(step3)) << read_file(tmp / "a.log");
  // Leftovers of the killed write of step 6 (if it had begun) take room on the small disk: clear them, as a
  // person would, so that the next run fills the disk inside its own checkpoint.
  for (const auto& e : fs::directory_iterator(out + "/checkpoints"))
    if (e.path().filename() != "step-000003") fs::remove_all(e.path());
  // 2. Resumed on the full disk: the step-6 checkpoint cannot be written.
  const auto t0 = Clock::now();
  rc = wait_rlhf(spawn_rlhf(tr.args + " --out " + out + " --resume " + step3, tmp / "b.log", fsize));
  const std::string msg = read_file(tmp / "b.log");
  std::cout << "[faults] full disk: the run stopped after " << seconds_since(t0) << " s with:\n"
            << msg.substr(msg.rfind("error") == std::string::npos ? 0 : msg.rfind("error")) << "\n";
  EXPECT_EQ(rc, 1) << msg;
  EXPECT_NE(msg.find(out), std::string::npos) << "the error names no file under " << out << ":\n" << msg;
  EXPECT_TRUE(msg.find("disk full") != std::string::npos || msg.find("No space left") != std::string::npos ||
              msg.find("too large") != std::string::npos)
      << "no hint of a full disk:\n" << msg;
  EXPECT_FALSE(fs::exists(out + "/checkpoints/step-000006")) << "a half checkpoint under its final name";
  EXPECT_FALSE(has_temp_entry(out + "/checkpoints")) << "the failed write left its temporary folder on the full disk";
  // 3. The previous checkpoint is whole and continues, on a disk with room, to the uninterrupted weights.
  EXPECT_EQ(check_checkpoint(step3), 3);
  const std::string ref = tmp / "ref", resumed = tmp / "resumed";
  ASSERT_EQ(run_to_end(tr.args + " --out " + ref, tmp / "ref.log"), 0) << read_file(tmp / "ref.log");
  ASSERT_EQ(run_to_end(tr.args + " --out " + resumed + " --resume " + step3, tmp / "c.log"), 0)
      << read_file(tmp / "c.log");
  std::string why;
  EXPECT_TRUE(same_tensors(ref + "/model.safetensors", resumed + "/model.safetensors", &why)) << why;
}

// ---- a model folder rewritten while others read it

namespace {
// The model at `dir` is wholly `a` or wholly `b`: same dtypes as saved, same values.
bool is_one_of(const TransformerLM& m, const std::map<std::string, torch::Tensor>& a,
               const std::map<std::string, torch::Tensor>& b) {
  auto matches = [&](const std::map<std::string, torch::Tensor>& ref) {
    auto& mm = const_cast<TransformerLM&>(m);
    for (auto& w : mm.weights()) {
      auto it = ref.find(w.name);
      if (it == ref.end()) return false;
      auto saved = mm.saved_dtypes.count(w.name) ? mm.saved_dtypes.at(w.name) : w.tensor.scalar_type();
      if (saved != it->second.scalar_type()) return false;
      if (!torch::equal(w.tensor.detach().to(it->second.scalar_type()), it->second)) return false;
    }
    return true;
  };
  return matches(a) || matches(b);
}
}  // namespace

TEST(Faults, ModelFolderRewrittenWhileReadIsAlwaysWhole) {
  test::TempDir tmp;
  torch::manual_seed(0);
  // A: the fixture as float32, one file. B: other weights, stored bf16 in shards (another config.json, an index):
  // a reader that mixed the two folders would see a config that does not match its tensors, or a missing shard.
  auto a = load_model(kModel);
  auto b = load_model(kModel);
  {
    torch::NoGradGuard ng;
    for (auto& w : b->weights()) w.tensor.add_(torch::randn_like(w.tensor) * 0.05);
  }
  SaveOptions sa{kModel, 0, ""}, sb{kModel, 2u << 20, "bfloat16"};
  save_model(*a, tmp / "A", sa);
  save_model(*b, tmp / "B", sb);
  const auto ta = io::load_checkpoint_tensors(tmp / "A"), tb = io::load_checkpoint_tensors(tmp / "B");
  // What `rlhf forward` prints for each, to compare the racing readers' outputs with.
  io::save_safetensors(tmp / "in.safetensors", {{"input_ids", torch::arange(1, 9, torch::kInt64).view({1, 8})}});
  const std::string fwd = "forward --device cpu --threads 1 --input " + tmp / "in.safetensors" + " --output ";
  ASSERT_EQ(run_to_end(fwd + tmp / "la.safetensors --model " + tmp / "A", tmp / "fa.log"), 0) << read_file(tmp / "fa.log");
  ASSERT_EQ(run_to_end(fwd + tmp / "lb.safetensors --model " + tmp / "B", tmp / "fb.log"), 0) << read_file(tmp / "fb.log");
  const auto la = io::load_safetensors(tmp / "la.safetensors").at("logits");
  const auto lb = io::load_safetensors(tmp / "lb.safetensors").at("logits");

  // Two folders rewritten in turn with A and B: X by save_model (PPO's final/, merge, init), Y by save_checkpoint
  // as the trainers' final save writes OUT (metrics.jsonl beside the model moves over).
  const std::string X = tmp / "X", Y = tmp / "Y";
  save_model(*a, X, sa);
  train::Checkpoint cka, ckb;
  cka.models.push_back({"", a.get(), sa});
  ckb.models.push_back({"", b.get(), sb});
  cka.save_rng = ckb.save_rng = false;
  // A re-save carries over what lives beside the model, not the old model's files: B's shards and index left
  // beside A's model.safetensors would be read first (B's weights under A's config).
  train::save_checkpoint(Y, ckb);
  train::save_checkpoint(Y, cka);
  for (const auto& e : fs::directory_iterator(Y))
    EXPECT_EQ(e.path().filename().string().rfind("model-", 0), std::string::npos) << e.path() << " of B left beside A";
  EXPECT_FALSE(fs::exists(Y + "/model.safetensors.index.json")) << "B's index left beside A";
  std::ofstream(Y + "/metrics.jsonl") << "{\"step\": 1}\n";
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::string writer_error;
  std::thread writer([&] {
    try {
      for (int i = 1; !stop; ++i) {
        save_model(i % 2 ? *b : *a, X, i % 2 ? sb : sa);
        train::save_checkpoint(Y, i % 2 ? ckb : cka);
        ++writes;
      }
    } catch (const std::exception& e) {
      writer_error = e.what();
    }
  });
  // Readers: load_model in this process's thread, `rlhf forward` processes in turn on X and Y.
  std::atomic<int> loads{0};
  std::vector<std::string> bad;
  std::mutex bad_mu;
  std::thread loader([&] {
    for (int i = 0; !stop; ++i) {
      const std::string dir = i % 2 ? X : Y;
      try {
        auto m = load_model(dir);
        if (!is_one_of(*m, ta, tb)) {
          std::lock_guard<std::mutex> g(bad_mu);
          bad.push_back(dir + ": loaded a model that is neither A nor B");
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(bad_mu);
        bad.push_back(dir + ": " + e.what());
      }
      ++loads;
    }
  });
  const auto t0 = Clock::now();
  int forwards = 0, saw_a = 0, saw_b = 0;
  while (forwards < 3 || (seconds_since(t0) < 4 && forwards < 10)) {
    const std::string dir = forwards % 2 ? X : Y, o = tmp / "lo.safetensors";
    fs::remove(o);
    const int rc = run_to_end(fwd + o + " --model " + dir, tmp / "fo.log");
    ++forwards;
    if (rc != 0) {
      std::lock_guard<std::mutex> g(bad_mu);
      bad.push_back("rlhf forward on " + dir + ": " + read_file(tmp / "fo.log"));
      continue;
    }
    const auto l = io::load_safetensors(o).at("logits");
    if (torch::equal(l, la)) ++saw_a;
    else if (torch::equal(l, lb)) ++saw_b;
    else {
      std::lock_guard<std::mutex> g(bad_mu);
      bad.push_back("rlhf forward on " + dir + ": logits of neither A nor B");
    }
  }
  stop = true;
  writer.join();
  loader.join();
  std::cout << "[faults] rewritten while read: " << writes << " rewrites of X and Y, " << loads
            << " load_model reads, " << forwards << " rlhf forward reads (" << saw_a << " A, " << saw_b << " B) in "
            << seconds_since(t0) << " s, " << bad.size() << " bad\n";
  EXPECT_TRUE(writer_error.empty()) << writer_error;
  EXPECT_GT(writes, 10);
  for (const auto& s : bad) ADD_FAILURE() << s;
  // The entries beside Y's model came through every rewrite.
  EXPECT_EQ(read_file(Y + "/metrics.jsonl"), "{\"step\": 1}\n");
  // No temporary folder is left once the writer has stopped.
  for (const auto& e : fs::directory_iterator(tmp.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}
