// The TCP meeting point of a multi-process job: rank 0 listens on MASTER_ADDR:MASTER_PORT, every other rank
// connects to it, and rank 0 hands every rank the same blob (the NCCL unique id). The connections stay open, so
// the CPU communicator (dist/communicator.h) moves its data over them too.
//
// Every wait is bounded by `timeout` (the launcher may start the ranks seconds apart, so the other ranks keep
// retrying the connection until then), and every failure is one line naming the rank, the address and what
// was missing: a rank that reports another world size, a duplicate rank, ranks that never arrived.
#pragma once
#include "dist/launch_env.h"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace hsa::dist {

// A connected TCP socket (closed on destruction). Reads and writes move whole buffers or throw.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket();
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // `what` names the peer in errors ("rank 3", "rank 0 at host:port").
  void send_all(const void* data, size_t bytes, const std::string& what);
  // Waits at most `timeout` (zero: without limit) for all `bytes`; a closed connection or the time-out throws.
  void recv_all(void* data, size_t bytes, const std::string& what, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
};

class Rendezvous {
 public:
  // Rank 0 listens and waits for the world_size - 1 other ranks; the others connect to it (retrying until the
  // time-out). A world size of 1 connects nothing.
  Rendezvous(const LaunchEnv& env, std::chrono::milliseconds timeout);

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Rank 0's `blob` on every rank (what the other ranks pass is ignored).
  std::string broadcast(const std::string& blob);

  // Rank 0: its connection to rank r (1 <= r < world size). Other ranks: to_root() is their connection to rank 0.
  Socket& to_rank(int r);
  Socket& to_root();
  std::string peer_name(int r) const;  // "rank 3" or "rank 0 at host:port"

 private:
  void listen_and_accept();
  void connect_to_root();

  LaunchEnv env_;
  std::chrono::milliseconds timeout_;
  std::vector<Socket> peers_;  // rank 0: index r is rank r (0 unused); others: index 0 is rank 0
};

}  // namespace hsa::dist
