// The NCCL backend of dist::Communicator: one process per GPU. It binds this process to its GPU first (the
// local rank's, or the only one it sees when the launcher gave each process one GPU through
// CUDA_VISIBLE_DEVICES), so it must be made before anything touches the device. Rank 0 creates the NCCL
// unique id and hands it to every rank through the TCP rendezvous (dist/rendezvous.h). Collectives are queued on
// hsa's CUDA stream, ordered with the kernels that produced and consume their tensors.
#pragma once
#include "dist/communicator.h"

namespace hsa::dist {

// Whether this build has NCCL (CMake found nccl.h and libnccl beside the CUDA toolkit).
bool nccl_available();

// Throws hsa::InvalidArgument in builds without NCCL, hsa::Error when NCCL fails (the message names the call).
std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, std::chrono::milliseconds timeout);

}  // namespace hsa::dist
