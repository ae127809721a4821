// Data parallelism's one extra step: after every rank has run its own rows forward and backward, each gradient
// becomes the mean over ranks. Gradients are packed into f32 buckets of about bucket_bytes (one collective per
// bucket, not one per tensor, so the per-call latency is paid a few times per step), all-reduced, divided by
// the world size and unpacked: afterwards every gradient in `grads` is f32 and identical on every rank, so each
// rank's optimizer makes the same update to its own copy of the weights.
//
// The sync runs after the whole backward (Model::backward returns the gradients at its end, so there is no
// per-layer hook to overlap the reduction with), and after all micro-batches of a step (one sync per step).
// Every rank's model has the same parameters, so `grads` holds the same names and shapes on every rank; the
// buckets follow the map's (name) order.
#pragma once
#include "dist/communicator.h"
#include "model/tensor_map.h"

#include <cstddef>

namespace hsa::dist {

constexpr size_t kDefaultBucketBytes = size_t(25) << 20;

// No-op for a local communicator (world size 1 without a backend: gradients stay as they are).
void average_gradients(Communicator& comm, TensorMap& grads, size_t bucket_bytes = kDefaultBucketBytes);

}  // namespace hsa::dist
