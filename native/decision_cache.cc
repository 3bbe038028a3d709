#include "decision_cache.h"

#include <algorithm>
#include <cstring>

namespace saco {

uint64_t hash_floats(const float* values, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

std::shared_ptr<const DecisionCache::Entry> DecisionCache::find(const float* tokens, size_t n) {
  const uint64_t h = hash_floats(tokens, n);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [first, last] = index_.equal_range(h);
  for (auto it = first; it != last; ++it) {
    const Entry& e = **it->second;
    if (e.tokens.size() != n || !std::equal(tokens, tokens + n, e.tokens.begin())) continue;
    lru_.splice(lru_.begin(), lru_, it->second);
    ++hits_;
    return *it->second;
  }
  ++misses_;
  return nullptr;
}

void DecisionCache::put(std::shared_ptr<const Entry> entry) {
  const size_t size = entry->bytes();
  const uint64_t h = hash_floats(entry->tokens.data(), entry->tokens.size());
  std::lock_guard<std::mutex> lock(mutex_);
  if (size > capacity_) return;
  auto [first, last] = index_.equal_range(h);
  for (auto it = first; it != last; ++it) {
    if ((*it->second)->tokens != entry->tokens) continue;
    bytes_ -= (*it->second)->bytes();
    lru_.erase(it->second);
    index_.erase(it);
    break;
  }
  evict_to(capacity_ - size);
  lru_.push_front(std::move(entry));
  index_.emplace(h, lru_.begin());
  bytes_ += size;
}

void DecisionCache::evict_to(size_t bytes) {
  while (bytes_ > bytes && !lru_.empty()) {
    const Entry& e = *lru_.back();
    auto [first, last] = index_.equal_range(hash_floats(e.tokens.data(), e.tokens.size()));
    for (auto it = first; it != last; ++it) {
      if (&**it->second != &e) continue;
      index_.erase(it);
      break;
    }
    bytes_ -= e.bytes();
    lru_.pop_back();
  }
}

void DecisionCache::set_capacity(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  capacity_ = bytes;
  evict_to(bytes);
}

size_t DecisionCache::capacity() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return capacity_;
}

DecisionCache::Stats DecisionCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {capacity_, bytes_, lru_.size(), hits_, misses_};
}

}  // namespace saco
