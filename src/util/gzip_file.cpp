#include "util/gzip_file.h"

#include <hsa/error.h>

#include <zlib.h>

#include <memory>

namespace hsa {

std::string read_file_gunzip(const std::string& path) {
  // gzread passes files that are not gzip through unchanged, so one reader serves both kinds.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> in(gzopen(path.c_str(), "rb"), gzclose);
  HSA_CHECK(in != nullptr, "read_file_gunzip: cannot open {}", path);
  gzbuffer(in.get(), 1 << 17);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(in.get(), buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const char* what = gzerror(in.get(), &code);
      fail("read_file_gunzip: {} is corrupt ({})", path, what ? what : "unknown zlib error");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace hsa
