// A Device that passes every I/O queue through an IoGate (io_gate.h): the hook by which QoS
// limits and group-snapshot holds reach the data path of any backend. The vhost-user export
// serves the gated Device instead of the pool's (csi/node.cc wraps the opener), so limits apply
// per volume to the guest's requests without the export knowing, and change while it runs.
//
// A gated queue forwards operations unchanged while the gate is unlimited (the cost is a
// relaxed atomic load per operation and two per poll). Under a limit, an operation that has no
// tokens is parked, in order (later operations, flushes included, queue behind it), and a timer
// wakes the queue's owner through completion_fd() when it may start. While the gate is held the
// queue reaps no completions (they stay in the engine) and takes its engine fd out of
// completion_fd() until the hold ends. completion_fd() is an epoll fd over the engine's fd and
// the timer (-1 when the engine has no fd: the owner polls, and parked operations start in
// poll()). Contract otherwise as blockdev::IoQueue; thread-safety as blockdev::Device.
#pragma once

#include <memory>

#include "blockdev/device.h"
#include "blockdev/qos/io_gate.h"

namespace vdisk::blockdev::qos {

std::unique_ptr<Device> GateDevice(std::unique_ptr<Device> inner, std::shared_ptr<IoGate> gate);

}  // namespace vdisk::blockdev::qos
