// Conformance: every image in ../shared/corpus/images must yield exactly the
// required files of its .expected.json (path, size, deleted, SHA-256).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using borderscan::test::corpus_dir;
using nlohmann::json;

namespace {

// Where libtsk 4.11 recovers something other than the truth the expected
// listing documents. Each entry: image, path -> why. The test then asserts
// libtsk's documented result (tsk_sha256) instead, so a change is noticed.
const std::map<std::pair<std::string, std::string>, std::string> known_gaps = {
    {{"dftt-6-fat-undel.dd", "/_rag1.dat"},
     "libtsk recovers deleted FAT files as one contiguous run from the start cluster; frag1.dat is fragmented"},
    {{"dftt-6-fat-undel.dd", "/_rag2.dat"},
     "libtsk recovers deleted FAT files as one contiguous run from the start cluster; frag2.dat is fragmented"},
    {{"dftt-6-fat-undel.dd", "/_ir1/dir2/frag3.dat"},
     "libtsk recovers deleted FAT files as one contiguous run from the start cluster; frag3.dat is fragmented"},
};

std::vector<std::string> expectation_files() {
  std::vector<std::string> out;
  const char* env = std::getenv("BORDERSCAN_CORPUS");
  fs::path dir = (env != nullptr && *env != '\0' ? fs::path(env) : fs::path(BORDERSCAN_DEFAULT_CORPUS)) / "images";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().string().ends_with(".expected.json")) {
      out.push_back(e.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) {
    out.push_back("corpus-missing");  // makes the test fail loudly rather than vanish
  }
  return out;
}

std::string basename_of(const std::string& path) {
  return path.substr(path.find_last_of('/') + 1);
}

}  // namespace

class CorpusImage : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusImage, ListsEveryRequiredFile) {
  BORDERSCAN_REQUIRE_CORPUS();
  const fs::path images = corpus_dir() / "images";
  std::ifstream in(images / GetParam());
  ASSERT_TRUE(in) << "cannot open " << (images / GetParam());
  const json expected = json::parse(in);
  const std::string image_name = expected.at("image");

  borderscan::test::scratch_dir tmp;
  fs::path image = images / image_name;
  if (expected.at("stored_as") == "gzip") {
    image = borderscan::test::gunzip_to(image, tmp.path());
  }
  const json report = borderscan::test::scan_image(image);
  ASSERT_NE(report.at("verdict"), "error") << report.at("verdict_reason");

  // Volumes: every file system the expectation names is found where it says.
  for (const auto& v : expected.at("volumes")) {
    const auto index = v.at("volume").get<std::size_t>();
    ASSERT_LT(index, report.at("volumes").size()) << "volume " << index << " missing";
    const auto& got = report.at("volumes")[index];
    EXPECT_EQ(got.at("offset"), v.at("offset_bytes")) << "volume " << index;
    if (v.at("filesystem").is_null()) {
      EXPECT_TRUE(got.at("filesystem").is_null()) << "volume " << index;
    } else {
      EXPECT_EQ(got.at("filesystem"), v.at("filesystem")) << "volume " << index;
    }
    if (v.value("libtsk_needs_explicit_type", json()).is_string()) {
      ASSERT_FALSE(got.at("notes").empty()) << "the report must say the FAT type was forced";
      EXPECT_NE(got.at("notes")[0].get<std::string>().find("explicit type"), std::string::npos);
    }
  }

  std::map<std::pair<int, std::string>, const json*> by_path;
  for (const auto& f : report.at("files")) {
    by_path[{f.at("volume").get<int>(), f.at("path").get<std::string>()}] = &f;
  }
  int checked = 0;
  for (const auto& e : expected.at("files")) {
    if (!e.at("required").get<bool>()) {
      continue;
    }
    ++checked;
    const int volume = e.at("volume");
    const std::string path = e.at("path");
    const json* got = nullptr;
    if (auto it = by_path.find({volume, path}); it != by_path.end()) {
      got = it->second;
    } else if (e.at("kind") == "orphan") {
      // Orphans match by volume, base name and size: their folder is unknowable.
      for (const auto& f : report.at("files")) {
        if (f.at("volume") == volume && basename_of(f.at("path")) == basename_of(path) &&
            f.at("size") == e.at("size")) {
          got = &f;
        }
      }
    }
    ASSERT_NE(got, nullptr) << image_name << ": required file missing: volume " << volume << " " << path;
    EXPECT_EQ(got->at("deleted"), e.at("deleted")) << image_name << " " << path;
    if (!e.at("size").is_null()) {
      EXPECT_EQ(got->at("size"), e.at("size")) << image_name << " " << path;
    }
    if (!e.at("sha256").is_null()) {
      if (auto gap = known_gaps.find({image_name, path}); gap != known_gaps.end()) {
        EXPECT_EQ(got->at("sha256"), e.at("tsk_sha256")) << "known libtsk gap changed: " << gap->second;
        EXPECT_NE(got->at("sha256"), e.at("sha256"));
      } else {
        EXPECT_EQ(got->at("sha256"), e.at("sha256")) << image_name << " " << path;
      }
    }
  }
  EXPECT_EQ(checked, expected.at("summary").value("required_files", checked)) << image_name;
}

INSTANTIATE_TEST_SUITE_P(SharedCorpus, CorpusImage, ::testing::ValuesIn(expectation_files()), [](const auto& info) {
  std::string name = info.param.substr(0, info.param.find(".expected.json"));
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
});
