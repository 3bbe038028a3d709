// Keys and values of users' decided sequences, kept between decision calls. Per-round serving
// decides a user's round t + 1 from a sequence that is their round-t sequence plus one round's
// action, to-go targets and state, so with round t's keys and values kept only those tokens
// are computed (four instead of 4(t + 1) at round t + 1). This is prefix caching as serving
// engines do it for language models: an entry is keyed by the exact inputs of every token it
// holds (λ, then each token's raw values), found by their hash and then compared in full, so a
// hit can never be another user's or a stale history; with rows_independent (codt.h) it gives
// the same bits as recomputing.
//
// A round's entry holds only its own new tokens and continues its parent (the previous
// round's entry), which it supersedes: the parent leaves the index, and the entry is found by
// the parent's key too (a repeated request of the same round finds its previous round there).
// An entry counts the bytes of its whole chain, so the total never falls below the memory
// held. The least recently used entries go beyond the byte capacity. Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "floats.h"

namespace saco {

class DecisionCache {
 public:
  static constexpr size_t kDefaultBytes = size_t{32} << 20;

  // A user's sequence of `positions` tokens: the keys and values of positions [from,
  // positions) here, those below `from` in the parent's chain.
  struct Entry {
    std::vector<float> tokens;  // λ, then the inputs of `positions` tokens in sequence order
    int positions = 0;
    int from = 0;
    std::shared_ptr<const Entry> parent;  // holds positions [0, from); null when from is 0
    size_t parent_tokens = 0;   // the parent's key: tokens[0, parent_tokens) (0: none)
    uint64_t key = 0, parent_key = 0;  // hashes of the two keys (set by put)
    Floats k, v;                // positions [from, positions): [layers, d, ·] and [layers, ·, d] (CodtDecoder::save_user)
    std::vector<float> logits;  // [rounds, K]: the logits of each round's state token
    size_t bytes() const {
      return sizeof(float) * (tokens.size() + k.size() + v.size() + logits.size()) + sizeof(Entry) + (parent ? parent->bytes() : 0);
    }
  };
  struct Stats {
    size_t capacity = 0, bytes = 0, entries = 0;
    uint64_t hits = 0, misses = 0;
  };

  explicit DecisionCache(size_t capacity_bytes = kDefaultBytes) : capacity_(capacity_bytes) {}
  // A copy of a model starts with an empty cache of the same capacity (its weights may change).
  DecisionCache(const DecisionCache& other) : capacity_(other.capacity()) {}
  DecisionCache& operator=(const DecisionCache&) = delete;

  // An entry whose key is exactly tokens[0, n) (its own or its parent's; it holds at least
  // those tokens), or null (counted as a hit or a miss).
  std::shared_ptr<const Entry> find(const float* tokens, size_t n);
  // Keeps `entry`, replacing one with the same tokens and `supersedes` (the entry it was
  // found to continue), then drops the least recently used entries until the cache fits its
  // capacity. An entry bigger than the capacity is not kept.
  void put(std::shared_ptr<Entry> entry, const Entry* supersedes = nullptr);
  // 0 turns the cache off (and empties it).
  void set_capacity(size_t bytes);
  size_t capacity() const;
  Stats stats() const;

 private:
  mutable std::mutex mutex_;
  size_t capacity_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
  using Lru = std::list<std::shared_ptr<const Entry>>;
  Lru lru_;  // most recently used first
  std::unordered_multimap<uint64_t, Lru::iterator> index_;  // by each entry's key(s)
  // with the mutex held:
  void erase(Lru::iterator it);
  void evict_to(size_t bytes);
};

// A hash of the floats' bits: the cache's index (entries are compared in full after it).
uint64_t hash_floats(const float* values, size_t n);

}  // namespace saco
