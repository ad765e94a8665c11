// The vhost-user wire protocol (QEMU docs/interop/vhost-user.rst): message numbers, flags,
// feature bits and payload layouts, plus the virtio-blk and split-virtqueue definitions from the
// virtio 1.x specification. Plain data, little-endian on the wire (x86-64/aarch64 hosts only).
// Shared by the server (blockdev/vhost/) and the protocol tests' client.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdisk::blockdev::vhost {

// ---- vhost-user messages (front-end -> back-end) ----
enum class Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kSetBackendReqFd = 21,  // "SET_SLAVE_REQ_FD" in QEMU 7.2
  kIotlbMsg = 22,
  kSetVringEndian = 23,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
  kResetDevice = 34,
  kVringKick = 35,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
};

// Back-end -> front-end messages (on the back-end request channel).
enum class BackendRequest : uint32_t {
  kIotlbMsg = 1,
  kConfigChange = 2,
};

constexpr uint32_t kVersion = 0x1;          // flags bits 0-1
constexpr uint32_t kVersionMask = 0x3;
constexpr uint32_t kFlagReply = 1u << 2;
constexpr uint32_t kFlagNeedReply = 1u << 3;

// Feature bits (GET/SET_FEATURES): the vhost-user one plus virtio transport bits.
constexpr int kFProtocolFeatures = 30;      // VHOST_USER_F_PROTOCOL_FEATURES
constexpr int kFVersion1 = 32;              // VIRTIO_F_VERSION_1
constexpr int kFRingIndirectDesc = 28;      // VIRTIO_RING_F_INDIRECT_DESC
constexpr int kFRingEventIdx = 29;          // VIRTIO_RING_F_EVENT_IDX

// Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
constexpr int kPfMq = 0;
constexpr int kPfReplyAck = 3;
constexpr int kPfBackendReq = 5;            // "SLAVE_REQ"
constexpr int kPfConfig = 9;
constexpr int kPfInflightShmfd = 12;        // GET/SET_INFLIGHT_FD

// Index field of SET_VRING_KICK/CALL/ERR payloads.
constexpr uint64_t kVringIndexMask = 0xff;
constexpr uint64_t kVringNoFdMask = 1u << 8;

constexpr int kMaxMemRegions = 8;
constexpr size_t kMaxConfigSize = 256;
// No valid message payload is larger than this; a bigger size is a protocol error.
constexpr size_t kMaxPayload = 4096;

struct MsgHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;
};
static_assert(sizeof(MsgHeader) == 12);

struct VringState {
  uint32_t index;
  uint32_t num;
};

struct VringAddr {
  uint32_t index;
  uint32_t flags;
  uint64_t desc_user_addr;
  uint64_t used_user_addr;
  uint64_t avail_user_addr;
  uint64_t log_guest_addr;
};
static_assert(sizeof(VringAddr) == 40);

struct MemRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
};

struct MemTable {
  uint32_t nregions;
  uint32_t padding;
  MemRegion regions[kMaxMemRegions];
};
static_assert(sizeof(MemTable) == 8 + 32 * kMaxMemRegions);

struct ConfigPayload {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;
  uint8_t region[kMaxConfigSize];
};
constexpr size_t kConfigHeaderSize = 12;

// GET_INFLIGHT_FD / SET_INFLIGHT_FD payload ("inflight description"; QEMU's VhostUserInflight,
// 24 bytes with the trailing padding QEMU sends).
struct InflightPayload {
  uint64_t mmap_size;
  uint64_t mmap_offset;
  uint16_t num_queues;
  uint16_t queue_size;
  uint32_t padding;
};
static_assert(sizeof(InflightPayload) == 24);

// The inflight area (vhost-user.rst, "Inflight I/O tracking", split virtqueues): one region per
// queue, each a header followed by one entry per descriptor (indexed by head descriptor id).
struct InflightDescSplit {
  uint8_t inflight;       // 1 while the request whose head this is has been taken but not used
  uint8_t padding[5];
  uint16_t next;          // links the last batch of used heads
  uint64_t counter;       // order in which the heads were taken from the avail ring
};
static_assert(sizeof(InflightDescSplit) == 16);

struct InflightQueueHeader {
  uint64_t features;      // 0
  uint16_t version;       // 1; 0 means a fresh (all-zero) region
  uint16_t desc_num;      // entries that follow (the queue size)
  uint16_t last_batch_head;
  uint16_t used_idx;      // used->idx as of the last completed batch
};
static_assert(sizeof(InflightQueueHeader) == 16);

constexpr uint16_t kInflightVersion = 1;
// Bytes one queue's region takes in the area (header + entries, 64-byte aligned). Only the back
// end reads the layout (QEMU allocates nothing: it keeps the fd the back end gave it).
constexpr uint64_t InflightQueueStride(uint16_t queue_size) {
  return (sizeof(InflightQueueHeader) + sizeof(InflightDescSplit) * uint64_t{queue_size} + 63) & ~uint64_t{63};
}

// ---- split virtqueue (virtio 1.x, 2.7) ----
constexpr uint16_t kDescFNext = 1;
constexpr uint16_t kDescFWrite = 2;
constexpr uint16_t kDescFIndirect = 4;
constexpr uint16_t kAvailFNoInterrupt = 1;
constexpr uint16_t kUsedFNoNotify = 1;
constexpr uint32_t kMaxQueueSize = 32768;

struct VringDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VringDesc) == 16);

struct VringUsedElem {
  uint32_t id;
  uint32_t len;
};

// ---- virtio-blk (virtio 1.x, 5.2) ----
constexpr int kBlkFSizeMax = 1;
constexpr int kBlkFSegMax = 2;
constexpr int kBlkFRo = 5;
constexpr int kBlkFBlkSize = 6;
constexpr int kBlkFFlush = 9;
constexpr int kBlkFTopology = 10;
constexpr int kBlkFMq = 12;
constexpr int kBlkFDiscard = 13;
constexpr int kBlkFWriteZeroes = 14;

constexpr uint32_t kBlkTIn = 0;
constexpr uint32_t kBlkTOut = 1;
constexpr uint32_t kBlkTFlush = 4;
constexpr uint32_t kBlkTGetId = 8;
constexpr uint32_t kBlkTDiscard = 11;
constexpr uint32_t kBlkTWriteZeroes = 13;

constexpr uint8_t kBlkSOk = 0;
constexpr uint8_t kBlkSIoErr = 1;
constexpr uint8_t kBlkSUnsupp = 2;

constexpr uint32_t kBlkIdBytes = 20;
constexpr uint32_t kSectorSize = 512;
constexpr uint32_t kWriteZeroesFlagUnmap = 1;

struct BlkOutHeader {
  uint32_t type;
  uint32_t ioprio;
  uint64_t sector;
};
static_assert(sizeof(BlkOutHeader) == 16);

struct BlkDiscardWriteZeroes {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
static_assert(sizeof(BlkDiscardWriteZeroes) == 16);

#pragma pack(push, 1)
struct BlkConfig {
  uint64_t capacity;  // in 512-byte sectors
  uint32_t size_max;
  uint32_t seg_max;
  uint16_t cylinders;
  uint8_t heads;
  uint8_t sectors;
  uint32_t blk_size;
  uint8_t physical_block_exp;
  uint8_t alignment_offset;
  uint16_t min_io_size;
  uint32_t opt_io_size;
  uint8_t writeback;
  uint8_t unused0;
  uint16_t num_queues;
  uint32_t max_discard_sectors;
  uint32_t max_discard_seg;
  uint32_t discard_sector_alignment;
  uint32_t max_write_zeroes_sectors;
  uint32_t max_write_zeroes_seg;
  uint8_t write_zeroes_may_unmap;
  uint8_t unused1[3];
};
#pragma pack(pop)
static_assert(sizeof(BlkConfig) == 60);
static_assert(offsetof(BlkConfig, blk_size) == 20);
static_assert(offsetof(BlkConfig, writeback) == 32);
static_assert(offsetof(BlkConfig, num_queues) == 34);
static_assert(offsetof(BlkConfig, max_discard_sectors) == 36);
static_assert(offsetof(BlkConfig, max_write_zeroes_sectors) == 48);

}  // namespace vdisk::blockdev::vhost
