// The error convention of the shim's C ABI (shim.cpp, cuda_graph.cpp): a function returns
// NULL on success, or a message that stays valid until the next shim call on the same
// thread when ATen threw; no C++ exception crosses into Rust.
#pragma once

#include <exception>
#include <string>

namespace gpushare_shim {

// One per thread, shared by every translation unit of the shim.
inline thread_local std::string last_error;

template <typename F>
const char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return last_error.c_str();
}

}  // namespace gpushare_shim
