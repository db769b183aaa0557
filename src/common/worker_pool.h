// Helper threads for short parallel loops inside a decode step (tens of microseconds of work each), where waking
// a sleeping thread (futex, ~10-50 µs with OMP_WAIT_POLICY=PASSIVE) would cost as much as the work itself.
// Helpers spin for a short while after each job (kSpinMicros) waiting for the next one, then sleep on a condition
// variable; a decode loop hands them a job every few microseconds, so they rarely sleep while it runs, and go
// quiet within kSpinMicros when it ends.
//
//   WorkerPool::get().run(n, fn)  calls fn(0) .. fn(n-1) once each, on the caller and the helpers, and returns
//                                 when all have returned.
//
// One job at a time: a run() while another thread's run() is in flight does its parts itself, serially.
// Parts are claimed from a shared counter, so the caller does the parts no helper has claimed yet: a helper that
// the OS has not scheduled (2 cores shared with OpenBLAS's and OpenMP's own threads) costs parallelism, not a stall.
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
  void helper_loop(uint64_t seen);
  void stop_helpers();
  // Claims and runs parts of job `gen` until none is left (returns at once if the job is no longer `gen`).
  void work(uint64_t gen, int n, const std::function<void(int)>& fn);

  std::vector<std::thread> helpers_;
  const std::function<void(int)>* job_ = nullptr;
  int job_n_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> claim_{0};  // (generation << 32) | next unclaimed part
  std::atomic<int> done_{0};        // parts of the current job finished
  bool stopping_ = false;
  std::mutex mutex_;
  std::mutex busy_;  // held by the run() in flight
  std::condition_variable wake_;
};

}  // namespace rlhf
