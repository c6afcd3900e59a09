// Process-wide libtorch settings (perf-notes.md). Torch-free header.
#pragma once

namespace fervid {

// `threads` intra-op threads (0 = every core; Debian's libtorch starts with 1), and glibc's
// allocator told to keep freed memory (1.6-2x on large activations). Call once at start-up.
void configure_runtime(int threads);

// Threads libtorch will use now.
int runtime_threads();

}  // namespace fervid
