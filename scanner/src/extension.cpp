#include "borderscan/scanner/extension.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace borderscan::scanner {
namespace {

using ext_row = std::pair<std::string_view, content_family>;

// Extensions that claim a family. Sorted by extension for binary search.
constexpr auto claimed_extensions = [] {
  std::array<ext_row, 60> rows{{
      {".3gp", content_family::video},     {".aac", content_family::audio},     {".avi", content_family::video},
      {".bmp", content_family::image},     {".cfg", content_family::text},      {".csv", content_family::text},
      {".doc", content_family::document},  {".docm", content_family::document}, {".docx", content_family::document},
      {".flac", content_family::audio},    {".flv", content_family::video},     {".gif", content_family::image},
      {".heic", content_family::image},    {".htm", content_family::text},      {".html", content_family::text},
      {".ico", content_family::image},     {".ini", content_family::text},      {".jpeg", content_family::image},
      {".jpg", content_family::image},     {".json", content_family::text},     {".log", content_family::text},
      {".m4a", content_family::audio},     {".m4v", content_family::video},     {".md", content_family::text},
      {".mkv", content_family::video},     {".mov", content_family::video},     {".mp3", content_family::audio},
      {".mp4", content_family::video},     {".mpeg", content_family::video},    {".mpg", content_family::video},
      {".odp", content_family::document},  {".ods", content_family::document},  {".odt", content_family::document},
      {".ogg", content_family::audio},     {".opus", content_family::audio},    {".pdf", content_family::document},
      {".png", content_family::image},     {".ppt", content_family::document},  {".pptm", content_family::document},
      {".pptx", content_family::document}, {".rtf", content_family::document},  {".svg", content_family::image},
      {".tif", content_family::image},     {".tiff", content_family::image},    {".tsv", content_family::text},
      {".txt", content_family::text},      {".wav", content_family::audio},     {".webm", content_family::video},
      {".webp", content_family::image},    {".wma", content_family::audio},     {".wmv", content_family::video},
      {".xls", content_family::document},  {".xlsm", content_family::document}, {".xlsx", content_family::document},
      {".xml", content_family::text},      {".yaml", content_family::text},     {".yml", content_family::text},
      {".jfif", content_family::image},    {".avif", content_family::image},    {".odg", content_family::document},
  }};
  std::sort(rows.begin(), rows.end(), [](const ext_row& a, const ext_row& b) { return a.first < b.first; });
  return rows;
}();

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) { return s.starts_with(p); });
}

bool is_media(content_family f) {
  return f == content_family::audio || f == content_family::video;
}

// Office formats are ZIP or OLE2 containers; a document name on such content is not a lie.
bool is_container_document(std::string_view ext) {
  return ext == ".docx" || ext == ".docm" || ext == ".xlsx" || ext == ".xlsm" || ext == ".pptx" || ext == ".pptm" ||
         ext == ".odt" || ext == ".ods" || ext == ".odp" || ext == ".odg" || ext == ".doc" || ext == ".xls" ||
         ext == ".ppt";
}

}  // namespace

const char* to_string(content_family f) noexcept {
  switch (f) {
    case content_family::unknown:
      return "unknown";
    case content_family::image:
      return "image";
    case content_family::video:
      return "video";
    case content_family::audio:
      return "audio";
    case content_family::document:
      return "document";
    case content_family::text:
      return "text";
    case content_family::executable:
      return "executable";
    case content_family::archive:
      return "archive";
    case content_family::other:
      return "other";
  }
  return "unknown";
}

std::string extension_of(std::string_view file_name) {
  const auto slash = file_name.find_last_of('/');
  if (slash != std::string_view::npos) {
    file_name.remove_prefix(slash + 1);
  }
  const auto dot = file_name.find_last_of('.');
  // ".bashrc" has no extension; "a." has an empty one.
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == file_name.size()) {
    return {};
  }
  std::string ext(file_name.substr(dot));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
  });
  return ext;
}

content_family family_of_extension(std::string_view extension) {
  const auto it = std::lower_bound(claimed_extensions.begin(), claimed_extensions.end(), extension,
                                   [](const ext_row& row, std::string_view e) { return row.first < e; });
  if (it != claimed_extensions.end() && it->first == extension) {
    return it->second;
  }
  return content_family::unknown;
}

content_family family_of_mime(std::string_view mime) {
  if (mime.empty() || mime == "application/octet-stream" || mime == "inode/x-empty" || mime == "application/x-empty") {
    return content_family::unknown;
  }
  if (starts_with_any(mime, {"application/x-executable", "application/x-sharedlib", "application/x-pie-executable",
                             "application/x-dosexec", "application/x-mach-binary", "application/x-msdownload",
                             "application/vnd.microsoft.portable-executable", "application/x-elf",
                             "application/x-object", "application/x-coff", "application/x-msi"})) {
    return content_family::executable;
  }
  if (starts_with_any(mime, {"application/zip",
                             "application/x-7z-compressed",
                             "application/x-rar",
                             "application/vnd.rar",
                             "application/gzip",
                             "application/x-gzip",
                             "application/x-bzip2",
                             "application/x-xz",
                             "application/zstd",
                             "application/x-zstd",
                             "application/x-tar",
                             "application/x-lzma",
                             "application/x-lz4",
                             "application/vnd.ms-cab-compressed",
                             "application/x-cpio",
                             "application/x-archive",
                             "application/x-iso9660-image",
                             "application/x-lzip",
                             "application/java-archive",
                             "application/x-compress"})) {
    return content_family::archive;
  }
  if (mime.starts_with("image/")) return content_family::image;
  if (mime.starts_with("video/")) return content_family::video;
  if (mime.starts_with("audio/")) return content_family::audio;
  if (mime.starts_with("text/") || mime == "application/json" || mime == "application/xml" ||
      mime == "application/csv") {
    return content_family::text;
  }
  if (mime == "application/pdf" || mime == "application/rtf" || mime == "application/msword" ||
      starts_with_any(mime, {"application/vnd.openxmlformats-officedocument", "application/vnd.ms-",
                             "application/vnd.oasis.opendocument", "application/postscript"})) {
    return content_family::document;
  }
  return content_family::other;
}

std::optional<extension_verdict> check_extension(std::string_view file_name, std::string_view mime) {
  const std::string ext = extension_of(file_name);
  const content_family claimed = family_of_extension(ext);
  const content_family actual = family_of_mime(mime);
  if (claimed == content_family::unknown || actual == content_family::unknown || claimed == actual) {
    return std::nullopt;
  }
  // Audio and video share container formats (MP4, Ogg, WebM): not a lie.
  if (is_media(claimed) && is_media(actual)) {
    return std::nullopt;
  }
  // RTF, XML and friends are text that documents are made of.
  if ((claimed == content_family::text && actual == content_family::document && mime == "application/rtf") ||
      (claimed == content_family::document && actual == content_family::text &&
       (ext == ".rtf" || mime == "text/rtf"))) {
    return std::nullopt;
  }
  if (claimed == content_family::document && is_container_document(ext) &&
      (actual == content_family::archive || mime == "application/x-ole-storage" || mime == "application/CDFV2" ||
       mime == "application/encrypted")) {
    return std::nullopt;
  }
  // SVG is XML text.
  if (claimed == content_family::image && ext == ".svg" && actual == content_family::text) {
    return std::nullopt;
  }
  if (actual == content_family::other) {
    // Content libmagic knows but we cannot place; a family claim on unplaceable
    // data is still worth a low note only when the claim is a media or image type.
    if (claimed == content_family::text || claimed == content_family::document) {
      return std::nullopt;
    }
  }
  severity level = severity::low;
  if (actual == content_family::executable) {
    level = severity::high;
  } else if (actual == content_family::archive) {
    level = severity::medium;
  }
  return extension_verdict{claimed, actual, level};
}

}  // namespace borderscan::scanner
