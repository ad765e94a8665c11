#include "common/crash_report.h"

#include <cxxabi.h>
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <typeinfo>

namespace vdisk {

namespace {

const char* g_program = "vdisk";

void Write(const char* s) { (void)!::write(STDERR_FILENO, s, std::strlen(s)); }

void Trace() {
  void* frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
}

void OnTerminate() {
  Write(g_program);
  Write(": terminate called");
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      Write(" after an uncaught ");
      int status = 0;
      char* name = abi::__cxa_demangle(typeid(ex).name(), nullptr, nullptr, &status);
      Write(status == 0 && name ? name : typeid(ex).name());
      std::free(name);
      Write(": ");
      Write(ex.what());
    } catch (...) {
      Write(" after an uncaught exception of unknown type");
    }
  }
  Write("\n");
  Trace();
  ::signal(SIGABRT, SIG_DFL);
  std::abort();
}

void OnSignal(int sig) {  // async-signal-safe apart from backtrace()'s first call (primed below)
  Write(g_program);
  Write(": fatal signal ");
  Write(::strsignal(sig));
  Write("\n");
  Trace();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void InstallCrashReporter(const char* program) {
  g_program = program;
  void* prime[1];
  (void)::backtrace(prime, 1);  // loads libgcc now, not inside a signal handler
  std::set_terminate(OnTerminate);
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::sigaction(sig, &sa, nullptr);
}

}  // namespace vdisk
