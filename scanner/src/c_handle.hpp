#pragma once
// unique_ptr deleters for C library handles (STYLE.md section 2).

#include <memory>

namespace borderscan::scanner::detail {

template <auto Destroy>
struct c_deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) {
      Destroy(p);
    }
  }
};

}  // namespace borderscan::scanner::detail
