// What the GPU side can see. Defined in codt_cuda.cu, compiled only where nvcc exists; without
// it the binding reports 0 devices and never calls this.
#pragma once

namespace saco {

// Number of CUDA devices usable now: 0 without a driver or a GPU (never an error).
int cuda_device_count();

}  // namespace saco
