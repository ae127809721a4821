#include "dist/sharded_adamw.h"

#include "ops/elementwise.h"
#include "ops/shape_ops.h"

#include <hsa/error.h>

#include <algorithm>
#include <cmath>

namespace hsa::dist {

ShardedAdamW::ShardedAdamW(Communicator& comm, const ops::AdamWConfig& config, TensorMap& master)
    : comm_(comm), config_(config) {
  const Device device = comm.device();
  int64_t total = 0;
  for (const auto& [name, p] : master) {
    HSA_CHECK(p.dtype() == DType::f32 && p.device() == device,
              "ShardedAdamW: master parameter {} must be f32 on {}, got {}", name, device_name(device), p.str());
    offsets_.push_back(total);
    total += p.numel();
  }
  const int64_t W = comm.world_size();
  shard_ = (total + W - 1) / W;
  flat_ = Tensor::zeros({shard_ * W}, DType::f32, device);
  size_t i = 0;
  for (auto& [name, p] : master) {
    Tensor view = flat_.slice(0, offsets_[i], offsets_[i] + p.numel()).view(p.shape());
    view.copy_from(p.contiguous());
    p = view;
    layout_.emplace_back(name, view);
    ++i;
  }
  const int64_t lo = comm.rank() * shard_, hi = lo + shard_;
  for (size_t k = 0; k < layout_.size(); ++k) {
    const int64_t b = std::max(lo, offsets_[k]), e = std::min(hi, offsets_[k] + layout_[k].second.numel());
    if (b < e) segments_.push_back({layout_[k].first, b, e, layout_[k].second.ndim() != 1});
  }
  m_ = Tensor::zeros({shard_}, DType::f32, device);
  v_ = Tensor::zeros({shard_}, DType::f32, device);
}

Tensor ShardedAdamW::flatten(const TensorMap& tensors, const std::string& prefix) const {
  std::vector<Tensor> parts;
  int64_t total = 0;
  for (const auto& [name, p] : layout_) {
    auto it = tensors.find(prefix + name);
    HSA_CHECK(it != tensors.end(), "ShardedAdamW: no {}{} (every parameter needs one)", prefix, name);
    HSA_CHECK(it->second.numel() == p.numel(), "ShardedAdamW: {}{} has {} elements, the parameter {}", prefix, name,
              it->second.numel(), p.numel());
    parts.push_back(it->second.to(comm_.device()).to(DType::f32).contiguous().view({-1}));
    total += p.numel();
  }
  if (shard_ * comm_.world_size() > total)
    parts.push_back(Tensor::zeros({shard_ * comm_.world_size() - total}, DType::f32, comm_.device()));
  return ops::concat(parts, 0);
}

double ShardedAdamW::step(const TensorMap& grads, double lr, double clip) {
  Tensor grad = Tensor::zeros({shard_}, DType::f32, comm_.device());
  comm_.reduce_scatter_sum(flatten(grads, ""), grad);
  grad = ops::scale(grad, 1.0 / double(comm_.world_size()));
  // The squares of every rank's slice add up to the squared norm of the whole (the padding is zero).
  const double norm = std::sqrt(std::max(0.0, all_reduce_mean(comm_, ops::sum_of_squares({grad})) *
                                                  double(comm_.world_size())));
  if (!std::isfinite(norm)) return norm;
  if (clip > 0 && norm > clip) grad = ops::scale(grad, clip / (norm + 1e-12));  // as clip_grad_norm does
  ++step_;
  const int64_t base = comm_.rank() * shard_;
  for (const Segment& s : segments_) {
    Tensor p = flat_.slice(0, s.begin, s.end), g = grad.slice(0, s.begin - base, s.end - base);
    Tensor m = m_.slice(0, s.begin - base, s.end - base), v = v_.slice(0, s.begin - base, s.end - base);
    ops::AdamWConfig cfg = config_;
    cfg.lr = lr;
    if (!s.decay) cfg.weight_decay = 0;
    ops::adamw_step(p, g, m, v, step_, cfg);
  }
  Tensor mine = flat_.slice(0, base, base + shard_).clone();
  comm_.all_gather(mine, flat_);
  return norm;
}

TensorMap ShardedAdamW::state() const {
  TensorMap out;
  if (step_ == 0) return out;  // no update yet: like AdamW, no state
  for (const auto& [prefix, shard] : {std::pair{"m.", m_}, std::pair{"v.", v_}}) {
    Tensor full = Tensor::zeros({flat_.numel()}, DType::f32, comm_.device());
    comm_.all_gather(shard, full);
    for (size_t k = 0; k < layout_.size(); ++k) {
      const Tensor& p = layout_[k].second;
      out[prefix + layout_[k].first] = full.slice(0, offsets_[k], offsets_[k] + p.numel()).view(p.shape()).clone();
    }
  }
  return out;
}

void ShardedAdamW::load_state(const TensorMap& state, int64_t steps) {
  for (const auto& [key, t] : state)
    HSA_CHECK(key.rfind("m.", 0) == 0 || key.rfind("v.", 0) == 0,
              "ShardedAdamW::load_state: unexpected tensor '{}' in optimizer state", key);
  step_ = steps;
  if (state.empty()) {
    m_.zero();
    v_.zero();
    return;
  }
  const int64_t base = comm_.rank() * shard_;
  m_ = flatten(state, "m.").slice(0, base, base + shard_).clone();
  v_ = flatten(state, "v.").slice(0, base, base + shard_).clone();
}

}  // namespace hsa::dist
