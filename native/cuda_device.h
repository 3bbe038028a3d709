// What the GPU side can see. Defined in cuda_device.cu when nvcc built it, else stubbed.
#pragma once

namespace saco {

// Number of CUDA devices usable now: 0 without a driver or a GPU (never an error).
int cuda_device_count();

}  // namespace saco
