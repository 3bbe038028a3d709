// Work split over threads by contiguous index ranges. Each index is a user, and every
// random draw is keyed by that user, so the result does not depend on the split.
#pragma once
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace saco {

inline unsigned resolve_threads(unsigned requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

// Calls body(worker, begin, end) on disjoint ranges covering [0, n), worker < threads (for
// per-thread scratch that outlives the call); rethrows the first exception.
inline void parallel_for_workers(size_t n, unsigned threads,
                                 const std::function<void(size_t, size_t, size_t)>& body) {
  const size_t workers = std::min<size_t>(std::max<unsigned>(threads, 1u), std::max<size_t>(n, 1));
  if (workers <= 1) {
    body(0, 0, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers);
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const size_t chunk = (n + workers - 1) / workers;
  for (size_t w = 0; w < workers; ++w) {
    const size_t begin = w * chunk;
    const size_t end = std::min(n, begin + chunk);
    if (begin >= end) break;
    pool.emplace_back([&, w, begin, end] {
      try {
        body(w, begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

// Calls body(begin, end) on disjoint ranges covering [0, n); rethrows the first exception.
inline void parallel_for(size_t n, unsigned threads, const std::function<void(size_t, size_t)>& body) {
  parallel_for_workers(n, threads, [&](size_t, size_t begin, size_t end) { body(begin, end); });
}

}  // namespace saco
