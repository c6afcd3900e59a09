#include "fervid/runtime.h"

#include <ATen/Parallel.h>
#include <malloc.h>

#include <algorithm>
#include <thread>

namespace fervid {

void configure_runtime(int threads) {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

int runtime_threads() { return at::get_num_threads(); }

}  // namespace fervid
