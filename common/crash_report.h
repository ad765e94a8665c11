// Last words of a process that dies on its own: an uncaught C++ exception (std::terminate) or a
// fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) writes what happened and a stack trace
// (raw addresses; `addr2line -e <binary>` resolves them) to stderr, where the driver's log goes,
// then dies the way it would have. Install once, early in main. Not for tests (gtest has its own).
#pragma once

namespace vdisk {

void InstallCrashReporter(const char* program);

}  // namespace vdisk
