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

void DecisionCache::Entry::reserve(int new_stride, int layers, int d) {
  if (new_stride <= stride) return;
  const size_t D = static_cast<size_t>(d), L = static_cast<size_t>(layers), S = static_cast<size_t>(new_stride), P = static_cast<size_t>(positions);
  Floats nk(L * D * S), nv(L * S * D);
  for (size_t l = 0; l < L && P > 0; ++l) {
    for (size_t i = 0; i < D; ++i) std::copy_n(k.data() + (l * D + i) * stride, P, nk.data() + (l * D + i) * S);
    std::copy_n(v.data() + l * stride * D, P * D, nv.data() + l * S * D);
  }
  k.swap(nk), v.swap(nv);
  stride = new_stride;
}

namespace {

// Tokens compared as the hash reads them, bit for bit (a NaN matches itself, -0 is not 0).
bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

}  // namespace

void DecisionCache::Index::rebuild(size_t slots) {
  std::vector<Slot> old(slots);
  old.swap(slots_);
  full_ = used_ = 0;
  for (const Slot& s : old) {
    if (s.state == kFull) insert(s.hash, s.at);
  }
}

void DecisionCache::Index::reserve(size_t more) {
  if (2 * (used_ + more) <= slots_.size()) return;
  size_t slots = std::max<size_t>(16, slots_.size());
  while (2 * (full_ + more) > slots / 2) slots *= 2;  // at most a quarter full after: rebuilds stay rare
  rebuild(slots);
}

void DecisionCache::Index::insert(uint64_t hash, Lru::iterator at) {
  reserve(1);
  size_t i = hash & mask();
  while (slots_[i].state == kFull) i = (i + 1) & mask();
  if (slots_[i].state == kEmpty) ++used_;
  slots_[i] = {hash, at, kFull};
  ++full_;
}

void DecisionCache::Index::erase(uint64_t hash, Lru::iterator at) {
  if (slots_.empty()) return;
  for (size_t i = hash & mask(); slots_[i].state != kEmpty; i = (i + 1) & mask()) {
    if (slots_[i].state != kFull || slots_[i].hash != hash || slots_[i].at != at) continue;
    slots_[i].state = kErased;
    --full_;
    return;
  }
}

std::unique_ptr<DecisionCache::Entry> DecisionCache::take(const float* tokens, size_t n) {
  const uint64_t h = hash_floats(tokens, n);
  std::lock_guard<std::mutex> lock(mutex_);
  const Lru::iterator at = index_.find(
      h, [&](const std::unique_ptr<Entry>& e) { return (n == e->tokens.size() || n == e->parent_tokens) && same_bits(tokens, e->tokens.data(), n); },
      lru_.end());
  if (at == lru_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  return erase(at);
}

std::unique_ptr<DecisionCache::Entry> DecisionCache::erase(Lru::iterator at) {
  const Entry& e = **at;
  index_.erase(e.key, at);
  if (e.parent_tokens) index_.erase(e.parent_key, at);
  bytes_ -= e.bytes();
  std::unique_ptr<Entry> out = std::move(*at);
  lru_.erase(at);
  return out;
}

void DecisionCache::put(std::unique_ptr<Entry> entry) {
  entry->key = hash_floats(entry->tokens.data(), entry->tokens.size());
  entry->parent_key = entry->parent_tokens ? hash_floats(entry->tokens.data(), entry->parent_tokens) : 0;
  const size_t size = entry->bytes();
  const uint64_t key = entry->key;
  std::lock_guard<std::mutex> lock(mutex_);
  // one with the same tokens (the same user computed again from the start) is replaced
  const Lru::iterator same = index_.find(
      key, [&](const std::unique_ptr<Entry>& e) { return e->tokens.size() == entry->tokens.size() && same_bits(e->tokens.data(), entry->tokens.data(), e->tokens.size()); },
      lru_.end());
  if (same != lru_.end()) erase(same);
  if (size > capacity_) return;
  index_.reserve(2);  // before the entry joins the list: the inserts below cannot throw
  evict_to(capacity_ - size);
  lru_.push_front(std::move(entry));
  const Entry& e = *lru_.front();
  index_.insert(key, lru_.begin());
  if (e.parent_tokens) index_.insert(e.parent_key, lru_.begin());
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
