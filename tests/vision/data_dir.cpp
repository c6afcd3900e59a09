// The one vision-test file that includes tests/test_util.h (and with it libtorch's headers):
// FERVID_DATA, failing when it is unset.
#include "test_util.h"
#include "vision_test_util.h"

namespace fervid::test {

std::filesystem::path shared_data_dir() { return data_dir(); }

}  // namespace fervid::test
