#include "model_pool.h"

#include <map>
#include <mutex>

namespace saco {
namespace {

std::mutex& pool_mutex() {
  static std::mutex m;
  return m;
}

std::map<int64_t, std::shared_ptr<const CodtModel>>& pool() {
  static std::map<int64_t, std::shared_ptr<const CodtModel>> p;
  return p;
}

int64_t next_id = 1;

}  // namespace

int64_t pool_load(std::unique_ptr<CodtModel> model) {
  validate_model(*model);
  std::shared_ptr<const CodtModel> shared(std::move(model));
  std::lock_guard<std::mutex> lock(pool_mutex());
  const int64_t id = next_id++;
  pool()[id] = std::move(shared);
  return id;
}

std::shared_ptr<const CodtModel> pool_get(int64_t id) {
  std::lock_guard<std::mutex> lock(pool_mutex());
  auto it = pool().find(id);
  return it == pool().end() ? nullptr : it->second;
}

bool pool_unload(int64_t id) {
  std::lock_guard<std::mutex> lock(pool_mutex());
  return pool().erase(id) > 0;
}

size_t pool_size() {
  std::lock_guard<std::mutex> lock(pool_mutex());
  return pool().size();
}

}  // namespace saco
