// Work split over threads by contiguous index ranges. Each index is a user (or a block of
// them), and every random draw is keyed by that user, so the result does not depend on the
// split.
//
// The threads are a process-wide pool, created on first use and kept: a rollout steps
// thousands of (round, block) waves, and creating threads per call cost more than a wave of
// small blocks. Any number of callers may use it at once (the libuv threads of several
// AsyncWorkers, several worker_threads, a call nested in a pool task): the calling thread
// always works on its own call too, and helpers that arrive after the work is gone leave at
// once, so a busy pool slows a call down but never blocks it.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace saco {

inline unsigned resolve_threads(unsigned requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

// The process-wide pool: threads wait for tasks and run them in arrival order. Never
// destroyed (its threads are left waiting at exit), so no exit path can join a thread that
// is still running work of a call that is being torn down.
class WorkerPool {
 public:
  // The most threads the pool will hold, whatever the callers ask.
  static constexpr size_t kMaxThreads = 256;

  static WorkerPool& instance() {
    static WorkerPool* pool = new WorkerPool();
    return *pool;
  }

  // Queues `copies` runs of `task`, starting threads until every queued task has an idle
  // thread waiting for it (at most kMaxThreads in all): concurrent calls each get their
  // helpers, as they did when every call made its own threads.
  void submit(const std::function<void()>& task, size_t copies) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < copies; ++i) tasks_.push_back(task);
    while (idle_ < tasks_.size() && threads_ < kMaxThreads) {
      std::thread([this] { serve(); }).detach();
      ++threads_;
      ++idle_;
    }
    wake_.notify_all();
  }

  size_t threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

 private:
  WorkerPool() = default;

  void serve() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
        --idle_;
      }
      task();  // tasks catch their own exceptions
      std::lock_guard<std::mutex> lock(mutex_);
      ++idle_;
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  size_t threads_ = 0, idle_ = 0;
};

// Calls body(worker, begin, end) on disjoint ranges covering [0, n), worker < threads (for
// per-thread scratch that outlives the call: no two ranges run at once under the same
// worker); rethrows the first exception once every range has run.
inline void parallel_for_workers(size_t n, unsigned threads,
                                 const std::function<void(size_t, size_t, size_t)>& body) {
  const size_t workers = std::min<size_t>(std::max<unsigned>(threads, 1u), std::max<size_t>(n, 1));
  if (workers <= 1) {
    body(0, 0, n);
    return;
  }
  const size_t chunk = (n + workers - 1) / workers;
  const size_t ranges = (n + chunk - 1) / chunk;
  // Shared with the helpers, which may start after this call has returned: they then find
  // no range left and never touch `body`.
  struct Job {
    std::atomic<size_t> next_range{0}, next_worker{0};
    size_t done = 0;  // under mutex
    std::exception_ptr failure;
    std::mutex mutex;
    std::condition_variable finished;
  };
  auto job = std::make_shared<Job>();
  const auto* fn = &body;
  auto participate = [job, fn, n, chunk, ranges] {
    const size_t worker = job->next_worker++;
    for (size_t r = job->next_range++; r < ranges; r = job->next_range++) {
      std::exception_ptr failure;
      try {
        (*fn)(worker, r * chunk, std::min(n, (r + 1) * chunk));
      } catch (...) {
        failure = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(job->mutex);
      if (failure && !job->failure) job->failure = failure;
      if (++job->done == ranges) job->finished.notify_all();
    }
  };
  WorkerPool::instance().submit(participate, workers - 1);
  participate();
  std::unique_lock<std::mutex> lock(job->mutex);
  job->finished.wait(lock, [&] { return job->done == ranges; });
  if (job->failure) std::rethrow_exception(job->failure);
}

// Calls body(begin, end) on disjoint ranges covering [0, n); rethrows the first exception.
inline void parallel_for(size_t n, unsigned threads, const std::function<void(size_t, size_t)>& body) {
  parallel_for_workers(n, threads, [&](size_t, size_t begin, size_t end) { body(begin, end); });
}

// Calls body(k) for every block k in [0, count), the blocks claimed one at a time as the
// threads come: a thread that starts late (a pool thread waking on a busy host) takes what is
// left instead of a fixed share; rethrows the first exception.
inline void for_blocks(size_t count, unsigned threads, const std::function<void(size_t)>& body) {
  std::atomic<size_t> next{0};
  parallel_for(std::min<size_t>(threads, count), threads, [&](size_t, size_t) {
    for (size_t k = next++; k < count; k = next++) body(k);
  });
}

}  // namespace saco
