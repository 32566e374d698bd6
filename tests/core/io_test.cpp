#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "mallorn/core/io.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn::core;
namespace fs = std::filesystem;

namespace {
class Io : public ::testing::Test {
 protected:
  std::size_t entries() const { return tmp_.entries(); }
  mallorn::test::temp_dir tmp_{"io"};
  const fs::path& dir_ = tmp_.path();
};
}  // namespace

TEST_F(Io, SourcesReadExactlyOrFail) {
  std::vector<std::uint8_t> data{1, 2, 3, 4, 5};
  ASSERT_TRUE(write_file_atomic(dir_ / "f", data).ok());
  auto fsrc = file_source::open(dir_ / "f");
  ASSERT_TRUE(fsrc.ok());
  memory_source msrc(data);
  for (byte_source* s : {static_cast<byte_source*>(fsrc->get()), static_cast<byte_source*>(&msrc)}) {
    std::array<std::uint8_t, 2> out{};
    ASSERT_TRUE(s->read_at(3, out).ok());
    EXPECT_EQ(out[0], 4);
    EXPECT_EQ(s->read_at(4, out).err().code, errc::io_error);
    EXPECT_EQ(s->size(), 5u);
  }
  EXPECT_EQ(file_source::open(dir_ / "missing").err().code, errc::io_error);
}

TEST_F(Io, AtomicSinkShowsNothingUntilCommit) {
  auto sink = atomic_file_sink::create(dir_ / "out");
  ASSERT_TRUE(sink.ok());
  std::vector<std::uint8_t> big(3u << 20, 0x5a);  // larger than the sink's buffer
  ASSERT_TRUE((*sink)->write(big).ok());
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  ASSERT_TRUE((*sink)->commit().ok());
  EXPECT_EQ(*read_file(dir_ / "out"), big);
  EXPECT_EQ(entries(), 1u) << "no temp file left";
}

TEST_F(Io, CommittedFilesFollowTheUmask) {
  mode_t old_mask = ::umask(022);
  ASSERT_TRUE(write_file_atomic(dir_ / "perm", std::vector<std::uint8_t>{1}).ok());
  ::umask(old_mask);
  EXPECT_EQ(fs::status(dir_ / "perm").permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
}

TEST_F(Io, DiscardedSinkLeavesNoTraceAndKeepsTheOldFile) {
  std::vector<std::uint8_t> old{9, 9};
  ASSERT_TRUE(write_file_atomic(dir_ / "out", old).ok());
  {
    auto sink = atomic_file_sink::create(dir_ / "out");
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->write(std::vector<std::uint8_t>(100, 1)).ok());
  }  // destroyed without commit
  EXPECT_EQ(*read_file(dir_ / "out"), old);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(Io, MappedFileSeesTheBytes) {
  std::vector<std::uint8_t> data(10000, 7);
  ASSERT_TRUE(write_file_atomic(dir_ / "m", data).ok());
  auto m = mapped_file::open(dir_ / "m");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(std::equal(m->bytes().begin(), m->bytes().end(), data.begin(), data.end()));
  ASSERT_TRUE(write_file_atomic(dir_ / "empty", {}).ok());
  EXPECT_TRUE(mapped_file::open(dir_ / "empty")->bytes().empty());
}
