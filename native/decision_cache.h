// Keys and values of users' decided sequences, kept between decision calls. Per-round serving
// decides a user's round t + 1 from a sequence that is their round-t sequence plus one round's
// action, to-go targets and state, so with round t's keys and values kept only those tokens
// are computed (four instead of 4(t + 1) at round t + 1). This is prefix caching as serving
// engines do it for language models: an entry is keyed by the exact inputs of every token it
// holds (λ, then each token's raw values), found by their hash and then compared in full, so a
// hit can never be another user's or a stale history; with rows_independent (codt.h) it gives
// the same bits as recomputing.
//
// An entry is one user's whole sequence, laid out as the decoder's own caches are: a call
// takes it out of the cache, the decoder computes the new tokens into it and attends to it in
// place (CodtDecoder::adopt_user), and the call puts it back under its longer key. Nothing is
// copied, and an entry's arrays are reused round after round (they grow, by a copy, only when
// a round passes their capacity). It is found by the previous round's key too, so a repeated
// request of the same round finds the entry it made. The least recently used entries go
// beyond the byte capacity. Thread-safe; an entry taken out is the taker's alone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "floats.h"

namespace saco {

class DecisionCache {
 public:
  static constexpr size_t kDefaultBytes = size_t{32} << 20;

  // A user's sequence of `positions` tokens.
  struct Entry {
    std::vector<float> tokens;  // λ, then the inputs of `positions` tokens in sequence order
    int positions = 0;
    size_t parent_tokens = 0;   // the previous round's key: tokens[0, parent_tokens) (0: none)
    uint64_t key = 0, parent_key = 0;  // hashes of the two keys (set by put)
    int stride = 0;             // positions the arrays hold: a multiple of 16
    Floats k, v;                // [layers, d, stride] (keys transposed) and [layers, stride, d]
    std::vector<float> logits;  // [rounds, K]: the logits of each round's state token
    // what the cache counts: the floats held (a reused token buffer's spare room, a few
    // percent of an entry, is not counted, so that an entry's size is a function of its round)
    size_t bytes() const { return sizeof(float) * (tokens.size() + k.size() + v.size() + logits.size()) + sizeof(Entry); }
    // Arrays for `stride` positions of a model of `layers` x `d`, keeping the `positions`
    // held (a copy where they grow).
    void reserve(int stride, int layers, int d);
  };
  struct Stats {
    size_t capacity = 0, bytes = 0, entries = 0;
    uint64_t hits = 0, misses = 0;
  };

  explicit DecisionCache(size_t capacity_bytes = kDefaultBytes) : capacity_(capacity_bytes) {}
  // A copy of a model starts with an empty cache of the same capacity (its weights may change).
  DecisionCache(const DecisionCache& other) : capacity_(other.capacity()) {}
  DecisionCache& operator=(const DecisionCache&) = delete;

  // Takes out the entry whose key is exactly tokens[0, n) (its own or its previous round's;
  // it holds at least those tokens), or null (counted as a hit or a miss).
  std::unique_ptr<Entry> take(const float* tokens, size_t n);
  // Keeps `entry` under its tokens (and its previous round's key), replacing one with the
  // same tokens, then drops the least recently used entries until the cache fits its
  // capacity. An entry bigger than the capacity is not kept.
  void put(std::unique_ptr<Entry> entry);
  // 0 turns the cache off (and empties it).
  void set_capacity(size_t bytes);
  size_t capacity() const;
  Stats stats() const;

 private:
  mutable std::mutex mutex_;
  size_t capacity_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
  using Lru = std::list<std::unique_ptr<Entry>>;
  // Entries by the hashes of their keys (an entry under each of its two): open addressing
  // with linear probing in one array, so a lookup touches a line or two of it and no
  // allocated node (a node-based multimap was ~4% of a 128-user served call).
  class Index {
   public:
    // Room for `more` inserts without a rebuild (so an insert that follows cannot throw).
    void reserve(size_t more);
    void insert(uint64_t hash, Lru::iterator at);
    void erase(uint64_t hash, Lru::iterator at);
    // The first entry under `hash` that `match` accepts, or `none`.
    template <class Match>
    Lru::iterator find(uint64_t hash, Match&& match, Lru::iterator none) const {
      if (slots_.empty()) return none;
      for (size_t i = hash & mask(); slots_[i].state != kEmpty; i = (i + 1) & mask()) {
        if (slots_[i].state == kFull && slots_[i].hash == hash && match(*slots_[i].at)) return slots_[i].at;
      }
      return none;
    }

   private:
    static constexpr uint8_t kEmpty = 0, kFull = 1, kErased = 2;
    struct Slot {
      uint64_t hash = 0;
      Lru::iterator at{};
      uint8_t state = kEmpty;
    };
    std::vector<Slot> slots_;  // a power of two, at most half used (full or erased)
    size_t full_ = 0, used_ = 0;
    size_t mask() const { return slots_.size() - 1; }
    void rebuild(size_t slots);
  };
  Lru lru_;  // most recently used first
  Index index_;
  // with the mutex held:
  std::unique_ptr<Entry> erase(Lru::iterator it);  // out of the cache, to its caller
  void evict_to(size_t bytes);
};

// A hash of the floats' bits: the cache's index (entries are compared in full after it).
uint64_t hash_floats(const float* values, size_t n);

}  // namespace saco
