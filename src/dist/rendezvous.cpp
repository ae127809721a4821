#include "dist/rendezvous.h"

#include <hsa/error.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace hsa::dist {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What a rank sends first: who it is and the job it thinks it belongs to.
struct Hello {
  char magic[4] = {'H', 'S', 'A', 'r'};
  uint32_t version = 1;
  uint32_t rank = 0;
  uint32_t world_size = 0;
};

milliseconds left_until(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

double seconds(milliseconds ms) { return double(ms.count()) / 1000.0; }

void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small messages (the blob, barriers) go at once
}

}  // namespace

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void Socket::send_all(const void* data, size_t bytes, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::send(fd_, p, bytes, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("dist: sending to {} failed: {}", what, n < 0 ? std::strerror(errno) : "connection closed");
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void Socket::recv_all(void* data, size_t bytes, const std::string& what, milliseconds timeout) {
  char* p = static_cast<char*>(data);
  const auto deadline = Clock::now() + timeout;
  while (bytes > 0) {
    if (timeout.count() > 0) {
      pollfd pfd{fd_, POLLIN, 0};
      int ready = ::poll(&pfd, 1, static_cast<int>(left_until(deadline).count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0)
        fail("dist: {} sent nothing for {:.1f} s (time-out); is it still running?", what, seconds(timeout));
    }
    ssize_t n = ::recv(fd_, p, bytes, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) fail("dist: {} closed the connection (did it fail? see its output)", what);
    if (n < 0) fail("dist: receiving from {} failed: {}", what, std::strerror(errno));
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

Rendezvous::Rendezvous(const LaunchEnv& env, milliseconds timeout) : env_(env), timeout_(timeout) {
  HSA_CHECK(timeout.count() > 0, "dist: the rendezvous time-out must be > 0, got {} ms", timeout.count());
  if (env_.world_size <= 1) return;
  if (env_.rank == 0) listen_and_accept();
  else connect_to_root();
}

std::string Rendezvous::peer_name(int r) const {
  if (r == 0) return fmt::format("rank 0 at {}:{}", env_.master_addr, env_.master_port);
  return fmt::format("rank {}", r);
}

Socket& Rendezvous::to_rank(int r) {
  HSA_CHECK(env_.rank == 0 && r >= 1 && r < env_.world_size, "dist: rank {} has no connection to rank {}", env_.rank,
            r);
  return peers_[static_cast<size_t>(r)];
}

Socket& Rendezvous::to_root() {
  HSA_CHECK(env_.rank != 0 && !peers_.empty(), "dist: rank {} has no connection to rank 0", env_.rank);
  return peers_[0];
}

void Rendezvous::listen_and_accept() {
  const auto deadline = Clock::now() + timeout_;
  Socket listener(::socket(AF_INET6, SOCK_STREAM, 0));
  bool v6 = listener.open();
  if (!v6) listener = Socket(::socket(AF_INET, SOCK_STREAM, 0));
  HSA_CHECK(listener.open(), "dist: rank 0 cannot create a socket: {}", std::strerror(errno));
  int one = 1, zero = 0;
  setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int bound;
  if (v6) {  // one dual-stack socket on every interface: the others may reach MASTER_ADDR over IPv4 or IPv6
    setsockopt(listener.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(static_cast<uint16_t>(env_.master_port));
    bound = ::bind(listener.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(env_.master_port));
    bound = ::bind(listener.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  HSA_CHECK(bound == 0 && ::listen(listener.fd(), 128) == 0,
            "dist: rank 0 cannot listen on port {} (MASTER_PORT): {}", env_.master_port, std::strerror(errno));

  peers_.resize(static_cast<size_t>(env_.world_size));
  int arrived = 1;
  while (arrived < env_.world_size) {
    pollfd pfd{listener.fd(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left_until(deadline).count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      std::vector<int> missing;
      for (int r = 1; r < env_.world_size; ++r)
        if (!peers_[static_cast<size_t>(r)].open()) missing.push_back(r);
      fail("dist: rank 0 waited {:.1f} s on port {} but {} of {} ranks never connected (missing: {}); were they "
           "started, with MASTER_ADDR={} reachable from their nodes?",
           seconds(timeout_), env_.master_port, missing.size(), env_.world_size, fmt::join(missing, ", "),
           env_.master_addr);
    }
    Socket s(::accept(listener.fd(), nullptr, nullptr));
    if (!s.open()) continue;  // the connection went away before we took it
    no_delay(s.fd());
    Hello hello;
    s.recv_all(&hello, sizeof hello, "a connecting rank", std::max(left_until(deadline), milliseconds(1)));
    HSA_CHECK(std::memcmp(hello.magic, Hello().magic, 4) == 0 && hello.version == Hello().version,
              "dist: something that is not an hsa rank (or another version) connected to port {}", env_.master_port);
    HSA_CHECK(hello.world_size == uint32_t(env_.world_size),
              "dist: rank {} reports world size {} but rank 0 has {}: were they started by one launch?", hello.rank,
              hello.world_size, env_.world_size);
    HSA_CHECK(hello.rank >= 1 && hello.rank < uint32_t(env_.world_size), "dist: a rank connected as rank {}, "
              "outside [1, {})", hello.rank, env_.world_size);
    Socket& slot = peers_[hello.rank];
    HSA_CHECK(!slot.open(), "dist: two processes connected as rank {} (two jobs on one MASTER_PORT?)", hello.rank);
    slot = std::move(s);
    ++arrived;
  }
}

void Rendezvous::connect_to_root() {
  const auto deadline = Clock::now() + timeout_;
  const std::string port = std::to_string(env_.master_port);
  std::string last_error = "no attempt";
  while (true) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(env_.master_addr.c_str(), port.c_str(), &hints, &found);
    if (rc != 0) {
      last_error = fmt::format("cannot resolve {}: {}", env_.master_addr, gai_strerror(rc));
    } else {
      for (addrinfo* a = found; a; a = a->ai_next) {
        Socket s(::socket(a->ai_family, a->ai_socktype, a->ai_protocol));
        if (!s.open()) continue;
        // connect() gives up after SO_SNDTIMEO on Linux: an unreachable host must not outlast the deadline.
        const auto wait = std::clamp(left_until(deadline), milliseconds(1), milliseconds(5000));
        timeval tv{static_cast<time_t>(wait.count() / 1000), static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
        setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(s.fd(), a->ai_addr, a->ai_addrlen) == 0) {
          timeval none{};
          setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
          no_delay(s.fd());
          Hello hello;
          hello.rank = static_cast<uint32_t>(env_.rank);
          hello.world_size = static_cast<uint32_t>(env_.world_size);
          s.send_all(&hello, sizeof hello, peer_name(0));
          peers_.clear();
          peers_.push_back(std::move(s));
          ::freeaddrinfo(found);
          return;
        }
        last_error = std::strerror(errno);
      }
      ::freeaddrinfo(found);
    }
    if (Clock::now() >= deadline)
      fail("dist: rank {} could not reach {} within {:.1f} s ({}); is rank 0 running, and MASTER_ADDR/MASTER_PORT "
           "right?",
           env_.rank, peer_name(0), seconds(timeout_), last_error);
    std::this_thread::sleep_for(std::min(milliseconds(200), left_until(deadline) + milliseconds(1)));
  }
}

std::string Rendezvous::broadcast(const std::string& blob) {
  if (env_.world_size <= 1) return blob;
  if (env_.rank == 0) {
    const uint64_t size = blob.size();
    for (int r = 1; r < env_.world_size; ++r) {
      to_rank(r).send_all(&size, sizeof size, peer_name(r));
      to_rank(r).send_all(blob.data(), blob.size(), peer_name(r));
    }
    return blob;
  }
  uint64_t size = 0;
  to_root().recv_all(&size, sizeof size, peer_name(0), timeout_);
  HSA_CHECK(size <= (uint64_t(1) << 30), "dist: rank 0 announced a blob of {} bytes (corrupt stream?)", size);
  std::string out(size, '\0');
  to_root().recv_all(out.data(), out.size(), peer_name(0), timeout_);
  return out;
}

}  // namespace hsa::dist
