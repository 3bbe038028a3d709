// Models loaded once per process and shared read-only by every thread and worker_thread:
// the .node library is loaded once per process, so this registry is too.
#pragma once
#include <cstdint>
#include <memory>

#include "codt.h"

namespace saco {

// Validates and stores the model; returns its id (> 0).
int64_t pool_load(std::unique_ptr<CodtModel> model);
// The model, or nullptr when the id is unknown or was unloaded. Holders keep it alive.
std::shared_ptr<const CodtModel> pool_get(int64_t id);
// Drops the pool's reference; returns false when the id was not loaded.
bool pool_unload(int64_t id);
size_t pool_size();

}  // namespace saco
