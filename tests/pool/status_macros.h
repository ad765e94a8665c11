// gtest assertions on Status / StatusOr values, for pool and backend tests:
//   VT_ASSERT_OK(expr), VT_EXPECT_OK(expr)          the status is OK (else it is printed)
//   VT_ASSERT_OK_AND_ASSIGN(lhs, expr)              assigns the value or fails the test
//   VT_EXPECT_CODE(expr, absl::StatusCode::kX)      the status has that code
#pragma once

#include <gtest/gtest.h>

#include "common/status.h"

namespace vdisk::pooltest {
inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
inline const Status& StatusOf(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace vdisk::pooltest

#define VT_ASSERT_OK(expr)                                                            \
  do {                                                                                \
    const auto& _vt = (expr);                                                         \
    ASSERT_TRUE(::vdisk::pooltest::StatusOf(_vt).ok()) << ::vdisk::pooltest::StatusOf(_vt); \
  } while (0)
#define VT_EXPECT_OK(expr)                                                            \
  do {                                                                                \
    const auto& _vt = (expr);                                                         \
    EXPECT_TRUE(::vdisk::pooltest::StatusOf(_vt).ok()) << ::vdisk::pooltest::StatusOf(_vt); \
  } while (0)
#define VT_ASSIGN_IMPL(tmp, lhs, expr)  \
  auto tmp = (expr);                    \
  ASSERT_TRUE(tmp.ok()) << tmp.status(); \
  lhs = std::move(*tmp)
#define VT_ASSERT_OK_AND_ASSIGN(lhs, expr) VT_ASSIGN_IMPL(VDISK_CONCAT(_vt_, __LINE__), lhs, expr)
#define VT_EXPECT_CODE(expr, want) \
  EXPECT_EQ(::vdisk::pooltest::StatusOf(expr).code(), want) << ::vdisk::pooltest::StatusOf(expr)
