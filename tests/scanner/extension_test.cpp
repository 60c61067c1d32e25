#include "borderscan/scanner/extension.hpp"

#include <gtest/gtest.h>

namespace sc = borderscan::scanner;

TEST(Extension, ExtractsLowerCaseExtension) {
  EXPECT_EQ(sc::extension_of("/photos/Holiday.JPG"), ".jpg");
  EXPECT_EQ(sc::extension_of("archive.tar.gz"), ".gz");
  EXPECT_EQ(sc::extension_of(".bashrc"), "");
  EXPECT_EQ(sc::extension_of("README"), "");
  EXPECT_EQ(sc::extension_of("dir.d/file"), "");
}

TEST(Extension, FlagsExecutableNamedAsImage) {
  const auto v = sc::check_extension("holiday.jpg", "application/x-executable");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->claimed, sc::content_family::image);
  EXPECT_EQ(v->actual, sc::content_family::executable);
  EXPECT_EQ(v->level, sc::severity::high);
  EXPECT_TRUE(sc::check_extension("invoice.pdf", "application/x-dosexec"));
}

TEST(Extension, FlagsArchiveAndOtherFamilies) {
  const auto zip = sc::check_extension("song.mp3", "application/zip");
  ASSERT_TRUE(zip);
  EXPECT_EQ(zip->level, sc::severity::medium);
  const auto pdf_as_image = sc::check_extension("scan.png", "application/pdf");
  ASSERT_TRUE(pdf_as_image);
  EXPECT_EQ(pdf_as_image->level, sc::severity::low);
}

TEST(Extension, AcceptsMatchingAndRelatedContent) {
  EXPECT_FALSE(sc::check_extension("a.jpg", "image/jpeg"));
  EXPECT_FALSE(sc::check_extension("a.png", "image/png"));
  EXPECT_FALSE(sc::check_extension("a.txt", "text/plain"));
  EXPECT_FALSE(sc::check_extension("a.csv", "text/csv"));
  EXPECT_FALSE(sc::check_extension("a.json", "application/json"));
  EXPECT_FALSE(sc::check_extension("a.docx", "application/zip"));  // OOXML is a ZIP
  EXPECT_FALSE(sc::check_extension("a.doc", "application/x-ole-storage"));
  EXPECT_FALSE(sc::check_extension("a.m4a", "video/mp4"));  // audio in an MP4 container
  EXPECT_FALSE(sc::check_extension("a.svg", "text/xml"));
}

TEST(Extension, IgnoresUnknownExtensionsAndUnknownContent) {
  EXPECT_FALSE(sc::check_extension("tool", "application/x-executable"));
  EXPECT_FALSE(sc::check_extension("a.bin", "application/x-executable"));
  EXPECT_FALSE(sc::check_extension("a.jpg", "application/octet-stream"));
  EXPECT_FALSE(sc::check_extension("a.jpg", "inode/x-empty"));
}

TEST(Extension, MapsMimeFamilies) {
  EXPECT_EQ(sc::family_of_mime("application/x-pie-executable"), sc::content_family::executable);
  EXPECT_EQ(sc::family_of_mime("application/x-mach-binary"), sc::content_family::executable);
  EXPECT_EQ(sc::family_of_mime("application/x-7z-compressed"), sc::content_family::archive);
  EXPECT_EQ(sc::family_of_mime("application/pdf"), sc::content_family::document);
  EXPECT_EQ(sc::family_of_mime("video/webm"), sc::content_family::video);
  EXPECT_EQ(sc::family_of_mime("application/x-sqlite3"), sc::content_family::other);
}
