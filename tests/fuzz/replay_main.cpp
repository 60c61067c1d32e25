// Standalone driver (no libFuzzer needed): runs a fuzz target over every file
// of the given files or directories, so CTest replays the seed corpora with
// any compiler, sanitizers included.
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// Libraries allocate what crafted fields claim (libtsk: an ext4 inode's
// inline-data size, twice). The worker bounds that with its address-space
// limit; the replay does too, so a seed that once exhausted memory replays
// as the library's error, not as gigabytes. ASan needs its shadow mapping:
// there, single C allocations over 512 MiB fail instead (as in run-fuzzers.sh).
#if defined(__SANITIZE_ADDRESS__)
#define BORDERSCAN_REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BORDERSCAN_REPLAY_ASAN 1
#endif
#endif

#ifdef BORDERSCAN_REPLAY_ASAN
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1:max_allocation_size_mb=512";
}
#endif

namespace {

void bound_address_space() {
#ifndef BORDERSCAN_REPLAY_ASAN
  constexpr rlim_t one_gib = rlim_t{1} << 30;
  const rlimit limit{one_gib, one_gib};
  if (setrlimit(RLIMIT_AS, &limit) != 0) {
    std::perror("setrlimit RLIMIT_AS");
  }
#endif
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::recursive_directory_iterator(argv[i])) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else {
      inputs.emplace_back(argv[i]);
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "no inputs\n");
    return 1;
  }
  bound_address_space();
  for (const auto& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", p.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::fprintf(stderr, "%zu inputs replayed\n", inputs.size());
  return 0;
}
