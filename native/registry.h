// Objects handed to JavaScript by id (> 0): models in the pool, trainers. One per process
// (the .node library is loaded once), shared by every thread and worker_thread; holders of
// a shared_ptr keep an object alive after it is removed.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace saco {

template <typename T>
class Registry {
 public:
  int64_t add(std::shared_ptr<T> item) {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t id = next_id_++;
    items_[id] = std::move(item);
    return id;
  }
  // nullptr when the id is unknown or was removed
  std::shared_ptr<T> get(int64_t id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = items_.find(id);
    return it == items_.end() ? nullptr : it->second;
  }
  bool remove(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.erase(id) > 0;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::map<int64_t, std::shared_ptr<T>> items_;
  int64_t next_id_ = 1;
};

}  // namespace saco
