// The differ's resources: worker threads for independent jobs, and dropping pages of the mapped
// models it is done with (what keeps diff memory O(chunk) for a model of any size).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "diff_plan.hpp"

namespace mallorn::formats::detail {

void page_releaser::operator()(bytes b) const {
  if (!enabled_ || b.empty()) return;
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside the range: a neighbour's bytes on a shared page stay mapped (dropping
  // them would be harmless for a read-only file mapping, only slower).
  auto begin = (reinterpret_cast<std::uintptr_t>(b.data()) + page - 1) / page * page;
  auto end = (reinterpret_cast<std::uintptr_t>(b.data()) + b.size()) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

unsigned worker_count(unsigned requested) {
  if (requested) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

void run_parallel(std::size_t n, unsigned threads, const std::function<void(std::size_t)>& task) {
  threads = static_cast<unsigned>(std::min<std::size_t>(std::max(1u, threads), n));
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) task(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = n;  // stop handing out work
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace mallorn::formats::detail
