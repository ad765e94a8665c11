#include "common/subprocess.h"

#include <gtest/gtest.h>

namespace vdisk {
namespace {

TEST(RunProcess, CollectsOutputAndExitCode) {
  auto r = RunProcess({"/bin/sh", "-c", "cat; echo err >&2; exit 3"}, "hello");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "hello");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->ok());
}

TEST(RunProcess, LargeInputAndOutputDoNotDeadlock) {
  std::string big(4 << 20, 'x');
  auto r = RunProcess({"cat"}, big);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out.size(), big.size());
}

TEST(RunProcess, MissingProgramAndTimeout) {
  EXPECT_EQ(RunProcess({"/nonexistent/prog"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RunProcess({"sleep", "5"}, "", 100).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(ShellQuote, SurvivesAShell) {
  const std::string word = "a b'c\"$HOME;`x`";
  auto r = RunProcess({"/bin/sh", "-c", "printf %s " + ShellQuote(word)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, word);
}

}  // namespace
}  // namespace vdisk
