// Helper threads for short parallel loops inside a decode step (tens of microseconds of work each), where waking
// a sleeping thread (futex, ~10-50 µs with OMP_WAIT_POLICY=PASSIVE) would cost as much as the work itself.
// Helpers spin for a short while after each job (kSpinMicros) waiting for the next one, then sleep on a condition
// variable; a decode loop hands them a job every few microseconds, so they rarely sleep while it runs, and go
// quiet within kSpinMicros when it ends.
//
//   WorkerPool::get().run(n, fn)  calls fn(0) .. fn(n-1), fn(0) on the caller, the rest on helpers, and returns
//                                 when all have returned. n <= size().
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rlhf {

class WorkerPool {
 public:
  // The process's pool: set_threads(n) sizes it to n threads including the caller (main sets it from --threads;
  // before that, 1: no helpers).
  static WorkerPool& get();
  void resize(int threads);  // not while a job runs
  int size() const { return static_cast<int>(helpers_.size()) + 1; }
  void run(int n, const std::function<void(int)>& fn);

  ~WorkerPool();

 private:
  static constexpr int kSpinMicros = 200;
  void helper_loop(int index, uint64_t seen);
  void stop_helpers();

  std::vector<std::thread> helpers_;
  const std::function<void(int)>* job_ = nullptr;
  int job_n_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stopping_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace rlhf
