#include "util/hash.h"

#include <fmt/format.h>

#ifdef HSA_WITH_XXHASH
#include <xxhash.h>
#endif

namespace hsa {

#ifdef HSA_WITH_XXHASH
struct Hasher::Impl {
  XXH3_state_t* state = XXH3_createState();
  Impl() { XXH3_64bits_reset(state); }
  ~Impl() { XXH3_freeState(state); }
};
Hasher::Hasher() : impl_(std::make_unique<Impl>()) {}
void Hasher::update(const void* data, size_t bytes) { XXH3_64bits_update(impl_->state, data, bytes); }
uint64_t Hasher::digest() const { return XXH3_64bits_digest(impl_->state); }
uint64_t hash_bytes(const void* data, size_t bytes) { return XXH3_64bits(data, bytes); }
std::string_view hash_algorithm() { return "xxh3"; }
#else
struct Hasher::Impl {
  uint64_t h = 14695981039346656037ull;
};
Hasher::Hasher() : impl_(std::make_unique<Impl>()) {}
void Hasher::update(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = impl_->h;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  impl_->h = h;
}
uint64_t Hasher::digest() const { return impl_->h; }
uint64_t hash_bytes(const void* data, size_t bytes) {
  Hasher h;
  h.update(data, bytes);
  return h.digest();
}
std::string_view hash_algorithm() { return "fnv1a"; }
#endif

Hasher::~Hasher() = default;

std::string hash_hex(uint64_t hash) { return fmt::format("{:016x}", hash); }

}  // namespace hsa
