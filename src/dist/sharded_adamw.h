// ZeRO stage 1 (`hsa train --zero1`): AdamW with its moments sharded over the ranks, so each rank keeps 1/W of
// the optimizer state (two f32 numbers per parameter) instead of all of it.
//
// The f32 master parameters are laid out, in name order, in one flat buffer padded to a multiple of the world
// size; rank r owns elements [r S, (r + 1) S), S = padded size / W. One step: the flat gradients are
// reduce-scattered (each rank receives the mean over ranks of its own slice), the global gradient norm is the
// all-reduced sum of the slices' squares, each rank clips and updates its slice with AdamW (a parameter's
// weight decay as in train/optimizer.h: none for 1-D norm gains), and the updated slices are all-gathered back
// into every rank's full master. The same traffic as the all-reduce of plain data parallelism, the same
// update (to rounding) as AdamW on the averaged gradients.
#pragma once
#include "dist/communicator.h"
#include "model/tensor_map.h"
#include "ops/adamw.h"

#include <string>
#include <vector>

namespace hsa::dist {

class ShardedAdamW {
 public:
  // Moves `master` (f32, on comm.device()) into the flat buffer: afterwards every tensor of `master` is a view
  // of it (a model that shared the old tensors must take them again).
  ShardedAdamW(Communicator& comm, const ops::AdamWConfig& config, TensorMap& master);

  // One update from this rank's gradients (every parameter's; any float dtype): mean over ranks, clip to `clip`
  // (0: off), AdamW at `lr`. Returns the gradient norm before clipping; when it is not finite nothing changes.
  // A collective: every rank calls it.
  double step(const TensorMap& grads, double lr, double clip);
  int64_t steps() const { return step_; }

  // The whole state as AdamW::state() names it ("m.<param>", "v.<param>"), so checkpoints are the same as
  // without sharding. A collective (the moments are all-gathered): every rank calls it.
  TensorMap state() const;
  // AdamW::state()'s tensors for every parameter (or none: a fresh optimizer); this rank keeps its slice.
  void load_state(const TensorMap& state, int64_t steps);

  int64_t shard_size() const { return shard_; }

 private:
  struct Segment {  // a parameter's part of this rank's slice: flat elements [begin, end)
    std::string name;
    int64_t begin, end;
    bool decay;
  };
  Tensor flatten(const TensorMap& tensors, const std::string& prefix) const;  // padded, f32, in name order

  Communicator& comm_;
  ops::AdamWConfig config_;
  std::vector<std::pair<std::string, Tensor>> layout_;  // name order: each parameter's view of flat_
  std::vector<int64_t> offsets_;
  Tensor flat_;              // f32 [padded]: every master parameter
  Tensor m_, v_;             // f32 [shard]: this rank's moments
  int64_t shard_ = 0;
  std::vector<Segment> segments_;
  int64_t step_ = 0;
};

}  // namespace hsa::dist
