#include "borderscan/scanner/evidence_pack.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "borderscan/scanner/digest.hpp"
#include "support/test_support.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;
using borderscan::test::scratch_dir;

namespace {

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}

sc::sha256_digest digest_of(const std::string& s) {
  sc::sha256_hasher h;
  h.update(bytes(s));
  return h.finish();
}

// A new pack file in dir, as the worker creates it.
std::unique_ptr<sc::evidence_pack> new_pack(const fs::path& path, sc::evidence_limits lim = {}) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << path;
  return std::make_unique<sc::evidence_pack>(fd, lim);
}

std::vector<sc::evidence_record> records_of(const fs::path& pack) {
  std::vector<sc::evidence_record> out;
  sc::read_evidence_pack(pack, [&](const sc::evidence_record& r) { out.push_back(r); });
  return out;
}

std::string content_of(const fs::path& pack, const sc::evidence_record& r) {
  std::string out;
  sc::copy_evidence(pack, r, [&](std::span<const std::byte> piece) {
    out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
  });
  return out;
}

std::string read_whole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_whole(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

std::uint64_t u64_at(const std::string& file, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(file[at + static_cast<std::size_t>(i)]);
  }
  return v;
}

std::string u64_le(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  }
  return out;
}

// One record written by hand: magic, digest, length, reserved, data.
std::string record(const std::string& magic, const std::string& data, std::uint64_t reserved) {
  const auto d = digest_of(data);
  std::string out = magic + std::string(reinterpret_cast<const char*>(d.data()), d.size()) + u64_le(data.size()) +
                    u64_le(reserved) + data;
  out.resize(sc::evidence_header_bytes + reserved, '\0');
  return out;
}

std::string random_text(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(gen());
  }
  return s;
}

std::uint64_t blocks_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return static_cast<std::uint64_t>(st.st_blocks);
}

}  // namespace

TEST(EvidencePack, KeptRecordReadsBackWithItsDigestOffsetAndBytes) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  const std::string content = "flagged content, written in two pieces";
  {
    auto pack = new_pack(path);
    auto r = pack->reserve(content.size());
    EXPECT_TRUE(r.pending());
    pack->write(r, 10, bytes(content).subspan(10));
    pack->write(r, 0, bytes(content).first(10));
    EXPECT_EQ(pack->keep(r, digest_of(content), content.size()), sc::evidence_outcome::kept);
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(pack->bytes_kept(), content.size());
    EXPECT_EQ(pack->records_kept(), 1u);
    EXPECT_EQ(pack->end_offset(), sc::evidence_header_bytes + content.size());
  }
  // The format, byte for byte.
  const std::string file = read_whole(path);
  ASSERT_EQ(file.size(), sc::evidence_header_bytes + content.size());
  EXPECT_EQ(file.substr(0, 8), "BSEVKEPT");
  const auto d = digest_of(content);
  EXPECT_EQ(file.substr(8, 32), std::string(reinterpret_cast<const char*>(d.data()), 32));
  EXPECT_EQ(u64_at(file, 40), content.size());
  EXPECT_EQ(u64_at(file, 48), content.size());
  EXPECT_EQ(file.substr(56), content);

  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].sha256, sc::sha256_hex(content));
  EXPECT_EQ(records[0].data_offset, sc::evidence_header_bytes);
  EXPECT_EQ(records[0].length, content.size());
  EXPECT_EQ(content_of(path, records[0]), content);
}

TEST(EvidencePack, ContentShorterThanItsRegionIsKeptAtItsLength) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path);
  // Regions claimed for streams whose length was not known.
  auto first = pack->reserve(1000);
  auto second = pack->reserve(1000);
  pack->write(first, 0, bytes("short"));
  pack->write(second, 0, bytes("abc"));
  ASSERT_EQ(pack->keep(first, digest_of("short"), 5), sc::evidence_outcome::kept);
  EXPECT_EQ(fs::file_size(path), 2 * (sc::evidence_header_bytes + 1000)) << "not the last record: it keeps its region";
  ASSERT_EQ(pack->keep(second, digest_of("abc"), 3), sc::evidence_outcome::kept);
  EXPECT_EQ(fs::file_size(path), 2 * sc::evidence_header_bytes + 1003) << "the last record gives its slack back";
  EXPECT_EQ(pack->end_offset(), fs::file_size(path));
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(content_of(path, records[0]), "short");
  EXPECT_EQ(records[1].data_offset, 2 * sc::evidence_header_bytes + 1000);
  EXPECT_EQ(content_of(path, records[1]), "abc");
  auto next = pack->reserve(2);
  EXPECT_EQ(next.header_offset(), 2 * sc::evidence_header_bytes + 1003);
}

TEST(EvidencePack, DroppedRecordIsSkippedAndItsDiskBlocksAreFreed) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path);
  const std::string big = random_text(8 << 20, 1);
  auto r = pack->reserve(big.size());
  auto kept = pack->reserve(4);  // after it: the dropped record stays in the middle
  pack->write(r, 0, bytes(big));
  pack->write(kept, 0, bytes("kept"));
  pack->sync();
  const std::uint64_t written = blocks_of(path);
  ASSERT_GE(written * 512, big.size()) << "the content takes disk space before it is dropped";
  pack->drop(r);
  EXPECT_FALSE(r.pending());
  pack->sync();
  EXPECT_LT(blocks_of(path) * 512, 64u << 10) << "punched out: the dropped content no longer takes disk space";
  EXPECT_EQ(fs::file_size(path), 2 * sc::evidence_header_bytes + big.size() + 4) << "records stay where they are";

  ASSERT_EQ(pack->keep(kept, digest_of("kept"), 4), sc::evidence_outcome::kept);
  const std::string file = read_whole(path);
  EXPECT_EQ(file.substr(0, 8), "BSEVDROP");
  EXPECT_EQ(file.find(big.substr(0, 64)), std::string::npos) << "no trace of the dropped bytes";
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(content_of(path, records[0]), "kept");
  EXPECT_EQ(pack->bytes_kept(), 4u);
}

TEST(EvidencePack, ReservationAbandonedWhilePendingIsDropped) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path);
  auto after = pack->reserve(1);
  {
    auto r = pack->reserve(6);
    pack->write(r, 0, bytes("secret"));
    auto moved = std::move(r);
    EXPECT_FALSE(r.pending());
    EXPECT_TRUE(moved.pending());
    after = pack->reserve(1);  // the one assigned over is dropped too; `moved` is then in the middle
  }
  pack->write(after, 0, bytes("k"));
  ASSERT_EQ(pack->keep(after, digest_of("k"), 1), sc::evidence_outcome::kept);
  const std::string file = read_whole(path);
  EXPECT_EQ(file.substr(0, 8), "BSEVDROP");
  EXPECT_EQ(file.substr(sc::evidence_header_bytes + 1, 8), "BSEVDROP");
  EXPECT_EQ(file.find("secret"), std::string::npos);
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(content_of(path, records[0]), "k");
}

TEST(EvidencePack, WritePastTheRegionIsRefused) {
  scratch_dir tmp;
  auto pack = new_pack(tmp / "pack");
  auto r = pack->reserve(4);
  EXPECT_THROW(pack->write(r, 2, bytes("abc")), std::out_of_range);
  EXPECT_THROW(pack->write(r, 5, bytes("")), std::out_of_range);
  EXPECT_THROW(pack->keep(r, digest_of("abcde"), 5), std::out_of_range);
  pack->drop(r);
  EXPECT_THROW(pack->write(r, 0, bytes("a")), std::logic_error) << "a finished reservation takes no more bytes";
}

TEST(EvidencePack, SameContentIsKeptOnce) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path);
  const std::string content = "the same bytes twice";
  auto first = pack->reserve(content.size());
  pack->write(first, 0, bytes(content));
  ASSERT_EQ(pack->keep(first, digest_of(content), content.size()), sc::evidence_outcome::kept);
  EXPECT_TRUE(pack->contains(digest_of(content)));
  EXPECT_FALSE(pack->contains(digest_of("other")));
  auto second = pack->reserve(content.size());
  pack->write(second, 0, bytes(content));
  EXPECT_EQ(pack->keep(second, digest_of(content), content.size()), sc::evidence_outcome::already_kept);
  EXPECT_FALSE(second.pending());
  EXPECT_EQ(pack->records_kept(), 1u);
  EXPECT_EQ(pack->bytes_kept(), content.size()) << "a copy already kept costs no budget";
  EXPECT_EQ(records_of(path).size(), 1u);
  EXPECT_EQ(fs::file_size(path), sc::evidence_header_bytes + content.size()) << "the second copy is gone";
}

TEST(EvidencePack, DroppedRecordsAtTheEndAreCutOffInWhateverOrderTheyEnd) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path);
  auto a = pack->reserve(100);
  auto b = pack->reserve(200);
  auto c = pack->reserve(300);
  const std::uint64_t all = 3 * sc::evidence_header_bytes + 600;
  EXPECT_EQ(fs::file_size(path), all);
  pack->drop(b);
  EXPECT_EQ(fs::file_size(path), all) << "in the middle: stays";
  pack->drop(c);
  EXPECT_EQ(fs::file_size(path), sc::evidence_header_bytes + 100) << "c, then b behind it, are cut off";
  EXPECT_EQ(pack->end_offset(), sc::evidence_header_bytes + 100);
  pack->write(a, 0, bytes(std::string(100, 'a')));
  ASSERT_EQ(pack->keep(a, digest_of(std::string(100, 'a')), 100), sc::evidence_outcome::kept);
  auto d = pack->reserve(50);
  EXPECT_EQ(d.header_offset(), sc::evidence_header_bytes + 100);
  pack->drop(d);
  EXPECT_EQ(fs::file_size(path), sc::evidence_header_bytes + 100);
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(content_of(path, records[0]), std::string(100, 'a'));
}

TEST(EvidencePack, KeepingPastTheScanBudgetIsRefusedAndDropped) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path, {.max_file_bytes = 100, .max_bytes_per_scan = 15});
  EXPECT_TRUE(pack->fits_budget(15));
  EXPECT_FALSE(pack->fits_budget(16));
  auto ten = pack->reserve(10);
  pack->write(ten, 0, bytes("0123456789"));
  ASSERT_EQ(pack->keep(ten, digest_of("0123456789"), 10), sc::evidence_outcome::kept);
  EXPECT_FALSE(pack->fits_budget(6));
  auto six = pack->reserve(6);
  pack->write(six, 0, bytes("abcdef"));
  EXPECT_EQ(pack->keep(six, digest_of("abcdef"), 6), sc::evidence_outcome::over_scan_budget);
  EXPECT_FALSE(six.pending());
  auto five = pack->reserve(5);
  pack->write(five, 0, bytes("abcde"));
  EXPECT_EQ(pack->keep(five, digest_of("abcde"), 5), sc::evidence_outcome::kept) << "exactly the budget fits";
  EXPECT_EQ(pack->bytes_kept(), 15u);
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(content_of(path, records[0]), "0123456789");
  EXPECT_EQ(content_of(path, records[1]), "abcde");
}

TEST(EvidencePack, ThreadsKeepingAtOnceEachGetTheirOwnRecord) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  auto pack = new_pack(path);
  constexpr int threads = 8, per_thread = 40;
  std::vector<std::jthread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string content =
            random_text(100 + static_cast<std::size_t>(i * 37), static_cast<unsigned>(t * 1000 + i));
        auto r = pack->reserve(content.size());
        for (std::size_t at = 0; at < content.size(); at += 50) {
          pack->write(r, at, bytes(content).subspan(at, std::min<std::size_t>(50, content.size() - at)));
        }
        EXPECT_EQ(pack->keep(r, digest_of(content), content.size()), sc::evidence_outcome::kept);
      }
    });
  }
  workers.clear();
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), static_cast<std::size_t>(threads * per_thread));
  for (const auto& r : records) {
    EXPECT_NO_THROW(content_of(path, r));  // each hashes to its digest
  }
}

TEST(EvidencePackReader, EmptyPackHasNoRecords) {
  scratch_dir tmp;
  write_whole(tmp / "pack", "");
  EXPECT_TRUE(records_of(tmp / "pack").empty());
  EXPECT_THROW(records_of(tmp / "missing"), std::system_error);
}

TEST(EvidencePackReader, SkipsRecordsLeftPendingByAWorkerThatDied) {
  scratch_dir tmp;
  write_whole(tmp / "pack", record("BSEVPEND", "half", 10) + record("BSEVKEPT", "whole", 5));
  const auto records = records_of(tmp / "pack");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].data_offset, 2 * sc::evidence_header_bytes + 10);
  EXPECT_EQ(content_of(tmp / "pack", records[0]), "whole");
}

TEST(EvidencePackReader, RejectsATruncatedPack) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  const std::string good = record("BSEVKEPT", "first", 5) + record("BSEVKEPT", "second", 6);
  write_whole(path, good);
  ASSERT_EQ(records_of(path).size(), 2u);
  write_whole(path, good.substr(0, good.size() - 1));  // the data region runs past the end
  EXPECT_THROW(records_of(path), std::runtime_error);
  write_whole(path, good.substr(0, sc::evidence_header_bytes + 5 + 30));  // a header cut short
  EXPECT_THROW(records_of(path), std::runtime_error);
}

TEST(EvidencePackReader, RejectsCorruptHeadersWithoutTrustingTheirSizes) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  write_whole(path, record("BSEVXXXX", "data", 4));
  EXPECT_THROW(records_of(path), std::runtime_error) << "bad magic";
  std::string longer = record("BSEVKEPT", "data", 4);
  longer.replace(40, 8, u64_le(5));  // length past its region
  write_whole(path, longer);
  EXPECT_THROW(records_of(path), std::runtime_error);
  for (const std::uint64_t reserved : {UINT64_MAX, UINT64_MAX - 55, std::uint64_t{1} << 62}) {
    std::string huge = record("BSEVKEPT", "data", 4);
    huge.replace(48, 8, u64_le(reserved));
    write_whole(path, huge);
    EXPECT_THROW(records_of(path), std::runtime_error) << reserved;
  }
  write_whole(path, record("BSEVKEPT", "data", 4) + std::string(20, '\0'));  // trailing garbage
  EXPECT_THROW(records_of(path), std::runtime_error);
}

TEST(EvidencePackReader, CopyRefusesContentThatDoesNotHashToItsDigest) {
  scratch_dir tmp;
  const fs::path path = tmp / "pack";
  std::string file = record("BSEVKEPT", "original", 8);
  file[sc::evidence_header_bytes] = 'O';
  write_whole(path, file);
  const auto records = records_of(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THROW(content_of(path, records[0]), std::runtime_error);
  sc::evidence_record past_end = records[0];
  past_end.data_offset += 4;
  EXPECT_THROW(content_of(path, past_end), std::runtime_error);
}
