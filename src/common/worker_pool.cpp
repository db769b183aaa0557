#include "common/worker_pool.h"

#include <chrono>

namespace rlhf {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

WorkerPool& WorkerPool::get() {
  static WorkerPool pool;
  return pool;
}

WorkerPool::~WorkerPool() { stop_helpers(); }

void WorkerPool::stop_helpers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : helpers_) t.join();
  helpers_.clear();
  stopping_ = false;
}

void WorkerPool::resize(int threads) {
  if (threads < 1) threads = 1;
  if (threads == size()) return;
  stop_helpers();
  // Helpers start from the current generation: one that starts late must still take the first job.
  const uint64_t start = generation_.load();
  for (int i = 1; i < threads; ++i) helpers_.emplace_back([this, start] { helper_loop(start); });
}

void WorkerPool::run(int n, const std::function<void(int)>& fn) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (n <= 1 || helpers_.empty() || !busy.owns_lock()) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    done_.store(0, std::memory_order_relaxed);
    gen = generation_.load(std::memory_order_relaxed) + 1;
    claim_.store(gen << 32, std::memory_order_relaxed);
    generation_.store(gen, std::memory_order_release);
  }
  wake_.notify_all();
  work(gen, n, fn);
  while (done_.load(std::memory_order_acquire) < n) cpu_relax();
}

void WorkerPool::work(uint64_t gen, int n, const std::function<void(int)>& fn) {
  for (;;) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    do {
      if ((c >> 32) != gen || static_cast<int64_t>(c & 0xffffffffu) >= n) return;
    } while (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel));
    // A claim of this generation's part means the job (and fn) is alive until done_ counts it.
    fn(static_cast<int>(c & 0xffffffffu));
    done_.fetch_add(1, std::memory_order_release);
  }
}

void WorkerPool::helper_loop(uint64_t seen) {
  for (;;) {
    // Spin for the next job, then sleep.
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen; ++i) {
      cpu_relax();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > spin_until) break;
      gen = generation_.load(std::memory_order_acquire);
    }
    const std::function<void(int)>* job;
    int n;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stopping_) return;
      seen = generation_.load(std::memory_order_relaxed);
      job = job_;
      n = job_n_;
    }
    work(seen, n, *job);
  }
}

}  // namespace rlhf
