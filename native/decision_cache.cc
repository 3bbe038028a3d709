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

namespace {

uint64_t own_key(const DecisionCache::Entry& e) { return hash_floats(e.tokens.data(), e.tokens.size()); }
uint64_t parent_key(const DecisionCache::Entry& e) { return hash_floats(e.tokens.data(), e.parent_tokens); }

}  // namespace

std::shared_ptr<const DecisionCache::Entry> DecisionCache::find(const float* tokens, size_t n) {
  const uint64_t h = hash_floats(tokens, n);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [first, last] = index_.equal_range(h);
  for (auto it = first; it != last; ++it) {
    const Entry& e = **it->second;
    if ((n != e.tokens.size() && n != e.parent_tokens) || !std::equal(tokens, tokens + n, e.tokens.begin())) continue;
    lru_.splice(lru_.begin(), lru_, it->second);
    ++hits_;
    return *it->second;
  }
  ++misses_;
  return nullptr;
}

void DecisionCache::erase(Lru::iterator at) {
  const Entry& e = **at;
  for (uint64_t key : {own_key(e), parent_key(e)}) {
    auto [first, last] = index_.equal_range(key);
    for (auto it = first; it != last; ++it) {
      if (it->second != at) continue;
      index_.erase(it);
      break;
    }
  }
  bytes_ -= e.bytes();
  lru_.erase(at);
}

void DecisionCache::put(std::shared_ptr<const Entry> entry, const Entry* supersedes) {
  const size_t size = entry->bytes();
  const uint64_t key = own_key(*entry);
  std::lock_guard<std::mutex> lock(mutex_);
  // what this entry replaces: one with the same tokens, and the entry it continues from
  auto drop = [&](uint64_t h, auto&& match) {
    auto [first, last] = index_.equal_range(h);
    for (auto it = first; it != last; ++it) {
      if (!match(**it->second)) continue;
      erase(it->second);
      return;
    }
  };
  drop(key, [&](const Entry& e) { return e.tokens == entry->tokens; });
  if (supersedes) drop(own_key(*supersedes), [&](const Entry& e) { return &e == supersedes; });
  if (size > capacity_) return;
  evict_to(capacity_ - size);
  lru_.push_front(std::move(entry));
  index_.emplace(key, lru_.begin());
  if (lru_.front()->parent_tokens) index_.emplace(parent_key(*lru_.front()), lru_.begin());
  bytes_ += size;
}

void DecisionCache::evict_to(size_t bytes) {
  while (bytes_ > bytes && !lru_.empty()) erase(std::prev(lru_.end()));
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
