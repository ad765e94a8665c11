#include "csi/request_log.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <memory>

#include "common/log.h"
#include "csi/csi.pb.h"

namespace vdisk::csi {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kMask[] = "***";

bool IsSecretField(const FieldDescriptor* f) {
  if (f->options().GetExtension(::csi::v1::csi_secret)) return true;
  return f->containing_type() == ::csi::v1::VolumeCapability::MountVolume::descriptor() &&
         f->name() == "mount_flags";
}

void RedactInPlace(Message* msg) {
  const Reflection* r = msg->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*msg, &fields);
  for (const FieldDescriptor* f : fields) {
    const bool secret = IsSecretField(f);
    if (f->is_map()) {
      // Map entries are repeated messages with "key" (1) and "value" (2).
      for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
        Message* entry = r->MutableRepeatedMessage(msg, f, i);
        const FieldDescriptor* key = entry->GetDescriptor()->FindFieldByNumber(1);
        const FieldDescriptor* value = entry->GetDescriptor()->FindFieldByNumber(2);
        const Reflection* er = entry->GetReflection();
        if (value->type() == FieldDescriptor::TYPE_MESSAGE) {
          RedactInPlace(er->MutableMessage(entry, value));
          continue;
        }
        if (value->type() != FieldDescriptor::TYPE_STRING) continue;
        std::string k = key->type() == FieldDescriptor::TYPE_STRING ? er->GetString(*entry, key) : "";
        if (secret || IsSecretKey(k)) er->SetString(entry, value, kMask);
      }
      continue;
    }
    if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*msg, f); ++i) RedactInPlace(r->MutableRepeatedMessage(msg, f, i));
      } else {
        RedactInPlace(r->MutableMessage(msg, f));
      }
      continue;
    }
    if (!secret) continue;
    if (f->type() == FieldDescriptor::TYPE_STRING || f->type() == FieldDescriptor::TYPE_BYTES) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*msg, f); ++i) r->SetRepeatedString(msg, f, i, kMask);
      } else {
        r->SetString(msg, f, kMask);
      }
    } else {
      r->ClearField(msg, f);
    }
  }
}

}  // namespace

std::string Redact(const Message& msg) {
  std::unique_ptr<Message> copy(msg.New());
  copy->CopyFrom(msg);
  RedactInPlace(copy.get());
  return copy->ShortDebugString();
}

}  // namespace vdisk::csi
