#include "model_pool.h"

#include "registry.h"

namespace saco {
namespace {

Registry<const CodtModel>& pool() {
  static Registry<const CodtModel> p;
  return p;
}

}  // namespace

int64_t pool_load(std::unique_ptr<CodtModel> model) {
  validate_model(*model);
  return pool().add(std::shared_ptr<const CodtModel>(std::move(model)));
}

std::shared_ptr<const CodtModel> pool_get(int64_t id) { return pool().get(id); }

bool pool_unload(int64_t id) { return pool().remove(id); }

size_t pool_size() { return pool().size(); }

}  // namespace saco
