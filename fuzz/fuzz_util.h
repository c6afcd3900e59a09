// Shared by the libFuzzer targets: fuzz input as a file (for readers that take a path), and the
// one rule every target checks: a parser refuses bad input with fervid's own error type, and
// anything else escaping (a library's exception, a crash, a leak, undefined behaviour) is a bug.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fervid::fuzz {

// An in-memory file (memfd) holding `data`, reachable by path as /proc/self/fd/N: no disk I/O
// per input. The file lives until the object goes.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("fervid-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) throw std::logic_error("memfd_create failed");
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) throw std::logic_error("write to memfd failed");
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace fervid::fuzz
