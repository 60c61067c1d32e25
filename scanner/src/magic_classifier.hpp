#pragma once
// libmagic: MIME type and description of a content prefix. One per thread;
// the cookie owns the strings it returns, so results are copied at once.

#include <cstddef>
#include <memory>
#include <span>
#include <string>

struct magic_set;

namespace borderscan::scanner::detail {

struct magic_result {
  std::string mime;
  std::string description;
};

class magic_classifier {
 public:
  magic_classifier();  // throws scan_error when the magic database cannot be loaded
  ~magic_classifier();
  magic_classifier(const magic_classifier&) = delete;
  magic_classifier& operator=(const magic_classifier&) = delete;

  magic_result classify(std::span<const std::byte> prefix);

 private:
  struct closer {
    void operator()(magic_set* cookie) const noexcept;
  };
  std::unique_ptr<magic_set, closer> mime_;
  std::unique_ptr<magic_set, closer> description_;
};

}  // namespace borderscan::scanner::detail
