// How much memory the process may still take: what Linux reports as available, and the
// cgroup's limit (a container's) when that is lower. The rollout compares its estimate with
// it before allocating, so a population that does not fit is a typed error that says how
// many users do, not an allocation failure half-way (or the kernel's OOM killer).
#pragma once
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace saco {

namespace memory_detail {

inline uint64_t read_number_file(const char* path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return std::numeric_limits<uint64_t>::max();
  try {
    return std::stoull(word);
  } catch (...) {
    return std::numeric_limits<uint64_t>::max();
  }
}

// "MemAvailable:  123456 kB" of /proc/meminfo, in bytes.
inline uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    uint64_t kb = 0;
    if (fields >> kb) return kb * 1024;
  }
  return std::numeric_limits<uint64_t>::max();
}

}  // namespace memory_detail

// Bytes this process can still allocate (max() when the system does not say).
inline uint64_t available_memory() {
  using namespace memory_detail;
  uint64_t free = mem_available();
  const uint64_t limit = read_number_file("/sys/fs/cgroup/memory.max");  // cgroup v2
  if (limit != std::numeric_limits<uint64_t>::max()) {
    const uint64_t used = read_number_file("/sys/fs/cgroup/memory.current");
    if (used != std::numeric_limits<uint64_t>::max()) free = std::min(free, limit > used ? limit - used : 0);
  } else {
    const uint64_t v1 = read_number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    const uint64_t used = read_number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    if (v1 < (uint64_t{1} << 60) && used != std::numeric_limits<uint64_t>::max()) free = std::min(free, v1 > used ? v1 - used : 0);
  }
  return free;
}

}  // namespace saco
