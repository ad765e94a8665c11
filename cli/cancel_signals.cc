#include "cli/cancel_signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

namespace vdisk::cli {

namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};
char g_message[512];
size_t g_message_len = 0;
struct sigaction g_old_int, g_old_term;

void OnStopSignal(int sig) {
  if (g_signal.exchange(sig) != 0) {  // the second one: stop now
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_cancel.store(true);
  const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  (void)!::write(STDERR_FILENO, name, ::strlen(name));
  (void)!::write(STDERR_FILENO, g_message, g_message_len);
}

}  // namespace

CancelOnSignals::CancelOnSignals(const std::string& what) {
  static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);
  const std::string msg = ": " + what +
                          " stops cleanly (locks released, finished work kept: run the same "
                          "command again to resume); send the signal again to stop at once\n";
  g_message_len = std::min(msg.size(), sizeof g_message);
  ::memcpy(g_message, msg.data(), g_message_len);
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

CancelOnSignals::~CancelOnSignals() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

const std::atomic<bool>* CancelOnSignals::flag() const { return &g_cancel; }

int ReceivedStopSignal() { return g_signal.load(); }

}  // namespace vdisk::cli
