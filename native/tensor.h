// Spans over caller-owned buffers. Every index is checked against the length the
// caller handed over, so a wrong size from JavaScript is an exception, never a write
// past the end of a buffer.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace saco {

template <typename T>
class Span {
 public:
  Span() = default;
  Span(T* data, size_t size) : data_(data), size_(size) {}

  size_t size() const { return size_; }
  T* data() const { return data_; }

  T& operator[](size_t i) const {
    if (i >= size_) throw std::out_of_range("index " + std::to_string(i) + " past length " + std::to_string(size_));
    return data_[i];
  }

  // A view of [offset, offset + count), checked once so the inner loops can use raw access.
  Span subspan(size_t offset, size_t count) const {
    if (offset > size_ || count > size_ - offset) {
      throw std::out_of_range("subspan [" + std::to_string(offset) + ", +" + std::to_string(count) +
                              ") past length " + std::to_string(size_));
    }
    return Span(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

// Throws std::invalid_argument unless span.size() == expected.
template <typename T>
void require_size(const Span<T>& span, size_t expected, const char* name) {
  if (span.size() != expected) {
    throw std::invalid_argument(std::string(name) + ": expected length " + std::to_string(expected) +
                                ", got " + std::to_string(span.size()));
  }
}

}  // namespace saco
