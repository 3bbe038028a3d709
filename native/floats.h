// Float buffers for the engine and the trainer.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

namespace saco {

// Scratch memory for the engine: 64-byte aligned, and left uninitialised by resize (KV
// caches are written before read; zero-filling them was a quarter of a rollout's time).
// Alignment is not only speed: Eigen computes the unaligned head of a vectorised exp/tanh
// with scalar functions, so an unaligned buffer would change results from call to call.
template <typename T>
struct AlignedUninitAllocator {
  using value_type = T;
  AlignedUninitAllocator() = default;
  template <typename U>
  AlignedUninitAllocator(const AlignedUninitAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    const size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedUninitAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const AlignedUninitAllocator<U>&) const noexcept { return false; }
};
using Floats = std::vector<float, AlignedUninitAllocator<float>>;

}  // namespace saco
