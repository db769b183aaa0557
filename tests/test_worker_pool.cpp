// WorkerPool (common/worker_pool.h) against plain loops: every part runs exactly once per job, from one caller
// or from several callers at once, across resizes. No torch: the ThreadSanitizer build (scripts/sanitize.sh)
// runs this file to check the pool's atomics and condition variable.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/worker_pool.h"

namespace {

// Runs `jobs` jobs of n parts; each part adds its index + 1 to its own slot. Expected: every slot == jobs · (i+1).
void run_jobs(rlhf::WorkerPool& pool, int jobs, int n) {
  std::vector<int64_t> slot(n, 0);
  for (int j = 0; j < jobs; ++j) pool.run(n, [&](int i) { slot[i] += i + 1; });
  for (int i = 0; i < n; ++i) ASSERT_EQ(slot[i], int64_t(jobs) * (i + 1)) << "part " << i;
}

}  // namespace

TEST(WorkerPool, EveryPartOnceAcrossManyShortJobs) {
  auto& pool = rlhf::WorkerPool::get();
  for (int threads : {1, 2, 3, 4}) {
    pool.resize(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int n : {0, 1, 2, 7, 64}) run_jobs(pool, 2000, n);
  }
  pool.resize(1);
}

TEST(WorkerPool, ConcurrentCallersEachGetTheirOwnJobDone) {
  // A run() while another is in flight does its parts itself: results must still be complete and separate.
  auto& pool = rlhf::WorkerPool::get();
  pool.resize(3);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int j = 0; j < 500; ++j) {
        std::vector<std::atomic<int>> hits(16 + c);
        pool.run(16 + c, [&](int i) { hits[i].fetch_add(1); });
        for (auto& h : hits)
          if (h.load() != 1) failures.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
  pool.resize(1);
}

TEST(WorkerPool, HelpersThatSleptTakeTheNextJob) {
  // After the spin window (200 µs) the helpers sleep on the condition variable; a new job must wake them and
  // still run every part once.
  auto& pool = rlhf::WorkerPool::get();
  pool.resize(2);
  for (int j = 0; j < 20; ++j) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    run_jobs(pool, 1, 32);
  }
  pool.resize(1);
}
