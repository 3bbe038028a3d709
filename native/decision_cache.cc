#include "decision_cache.h"

#include <algorithm>
#include <cstring>

namespace saco {

uint64_t hash_floats(const float* values, size_t n) {
  // four independent multiply-xor lanes over the floats' bits (a serial chain of multiplies
  // is latency-bound), then mixed
  uint64_t lane[4] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 0x2545f4914f6cdd1dull};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t j = 0; j < 4; ++j) {
      uint32_t bits;
      std::memcpy(&bits, values + i + j, sizeof bits);
      lane[j] = (lane[j] ^ bits) * 0xff51afd7ed558ccdull;
    }
  }
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    lane[i & 3] = (lane[i & 3] ^ bits) * 0xff51afd7ed558ccdull;
  }
  uint64_t h = n;
  for (uint64_t x : lane) {
    h = (h ^ x ^ (x >> 31)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
  }
  return h;
}

namespace {

uint64_t own_key(const DecisionCache::Entry& e) { return e.key; }
uint64_t parent_key(const DecisionCache::Entry& e) { return e.parent_key; }

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

void DecisionCache::put(std::shared_ptr<Entry> entry, const Entry* supersedes) {
  entry->key = hash_floats(entry->tokens.data(), entry->tokens.size());
  if (entry->parent_tokens) entry->parent_key = hash_floats(entry->tokens.data(), entry->parent_tokens);
  const size_t size = entry->bytes();
  const uint64_t key = entry->key;
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
