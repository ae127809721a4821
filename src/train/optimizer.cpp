#include "train/optimizer.h"

#include "ops/elementwise.h"

#include <cmath>

namespace hsa {

double learning_rate(const ScheduleConfig& s, int64_t step) {
  if (s.warmup_steps > 0 && step <= s.warmup_steps) return s.lr * double(step) / double(s.warmup_steps);
  int64_t decay_steps = std::max<int64_t>(1, s.total_steps - s.warmup_steps);
  double progress = std::min(1.0, double(step - s.warmup_steps) / double(decay_steps));
  double cosine = 0.5 * (1 + std::cos(M_PI * progress));
  return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * cosine);
}

double clip_grad_norm(TensorMap& grads, double max_norm) {
  std::vector<Tensor> all;
  for (auto& [name, g] : grads) all.push_back(g);
  double norm = std::sqrt(ops::sum_of_squares(all));
  if (max_norm > 0 && norm > max_norm) {
    double s = max_norm / (norm + 1e-12);
    for (auto& [name, g] : grads) g = ops::scale(g, s);
  }
  return norm;
}

void AdamW::step(TensorMap& params, const TensorMap& grads, double lr) {
  ++step_;
  for (auto& [name, p] : params) {
    auto it = grads.find(name);
    if (it == grads.end()) continue;
    auto [mi, fresh] = m_.try_emplace(name);
    if (fresh) {
      mi->second = Tensor::zeros(p.shape(), p.dtype(), p.device());
      v_[name] = Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
    ops::AdamWConfig cfg = config_;
    cfg.lr = lr;
    if (p.ndim() == 1) cfg.weight_decay = 0;  // norm gains are not decayed
    ops::adamw_step(p, it->second, mi->second, v_[name], step_, cfg);
  }
}

TensorMap AdamW::state() const {
  TensorMap out;
  for (const auto& [name, t] : m_) out["m." + name] = t;
  for (const auto& [name, t] : v_) out["v." + name] = t;
  return out;
}

void AdamW::load_state(const TensorMap& state, int64_t steps) {
  m_.clear();
  v_.clear();
  for (const auto& [key, t] : state) {
    if (key.rfind("m.", 0) == 0) m_[key.substr(2)] = t.clone();
    else if (key.rfind("v.", 0) == 0) v_[key.substr(2)] = t.clone();
    else fail("AdamW::load_state: unexpected tensor '{}' in optimizer state", key);
  }
  step_ = steps;
}

}  // namespace hsa
