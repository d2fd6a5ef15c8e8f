#include "test/apiserver/protobuf.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

struct Field {
  int number = 0;
  int wire_type = 0;
  uint64_t varint = 0;
  absl::string_view bytes;
};

bool ReadVarint(absl::string_view& in, uint64_t* out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

// Splits one message into its fields (wire format only, no schema).
bool Parse(absl::string_view in, std::vector<Field>* out) {
  while (!in.empty()) {
    uint64_t key;
    if (!ReadVarint(in, &key)) return false;
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire_type = static_cast<int>(key & 7);
    switch (f.wire_type) {
      case 0:
        if (!ReadVarint(in, &f.varint)) return false;
        break;
      case 1:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        break;
      case 5:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        break;
      case 2: {
        uint64_t len;
        if (!ReadVarint(in, &len) || len > in.size()) return false;
        f.bytes = in.substr(0, len);
        in.remove_prefix(len);
        break;
      }
      default:
        return false;
    }
    out->push_back(f);
  }
  return true;
}

// map<string, string|bytes> entry: 1 = key, 2 = value.
bool MapEntry(absl::string_view entry, std::string* key, std::string* value) {
  std::vector<Field> fields;
  if (!Parse(entry, &fields)) return false;
  for (const auto& f : fields) {
    if (f.number == 1) *key = std::string(f.bytes);
    if (f.number == 2) *value = std::string(f.bytes);
  }
  return true;
}

bool DecodeMeta(absl::string_view in, json* meta) {
  std::vector<Field> fields;
  if (!Parse(in, &fields)) return false;
  *meta = json::object();
  for (const auto& f : fields) {
    std::string k, v;
    switch (f.number) {
      case 1:
        (*meta)["name"] = std::string(f.bytes);
        break;
      case 2:
        (*meta)["generateName"] = std::string(f.bytes);
        break;
      case 3:
        (*meta)["namespace"] = std::string(f.bytes);
        break;
      case 6:
        (*meta)["resourceVersion"] = std::string(f.bytes);
        break;
      case 11:
        if (!MapEntry(f.bytes, &k, &v)) return false;
        (*meta)["labels"][k] = v;
        break;
      case 12:
        if (!MapEntry(f.bytes, &k, &v)) return false;
        (*meta)["annotations"][k] = v;
        break;
      case 14:
        (*meta)["finalizers"].push_back(std::string(f.bytes));
        break;
      default:
        break;  // server-owned fields and ones kubectl does not send
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<json> DecodeKubeProtobuf(absl::string_view body) {
  static constexpr absl::string_view kMagic("k8s\0", 4);
  if (body.substr(0, 4) != kMagic) return absl::InvalidArgumentError("missing protobuf magic");
  std::vector<Field> envelope;
  if (!Parse(body.substr(4), &envelope)) return absl::InvalidArgumentError("bad envelope");
  std::string api_version, kind;
  absl::string_view raw;
  for (const auto& f : envelope) {
    if (f.number == 1) {
      std::vector<Field> type_meta;
      if (!Parse(f.bytes, &type_meta)) return absl::InvalidArgumentError("bad TypeMeta");
      for (const auto& t : type_meta) {
        if (t.number == 1) api_version = std::string(t.bytes);
        if (t.number == 2) kind = std::string(t.bytes);
      }
    } else if (f.number == 2) {
      raw = f.bytes;
    }
  }
  if (api_version != "v1" || (kind != "Namespace" && kind != "ConfigMap" && kind != "Secret" &&
                              kind != "ServiceAccount")) {
    return absl::UnimplementedError(absl::StrCat(
        "protobuf bodies are decoded for v1 Namespace, ConfigMap, Secret and ServiceAccount "
        "only, not ",
        api_version, " ", kind, "; send JSON (kubectl apply -f / create -f)"));
  }
  std::vector<Field> fields;
  if (!Parse(raw, &fields)) return absl::InvalidArgumentError("bad object");
  json obj = {{"apiVersion", api_version}, {"kind", kind}, {"metadata", json::object()}};
  for (const auto& f : fields) {
    if (f.number == 1) {
      if (!DecodeMeta(f.bytes, &obj["metadata"])) return absl::InvalidArgumentError("bad metadata");
      continue;
    }
    std::string k, v;
    if (kind == "ConfigMap") {
      if (f.number == 2 || f.number == 3) {
        if (!MapEntry(f.bytes, &k, &v)) return absl::InvalidArgumentError("bad data");
        if (f.number == 2) {
          obj["data"][k] = v;
        } else {
          obj["binaryData"][k] = absl::Base64Escape(v);
        }
      } else if (f.number == 4) {
        obj["immutable"] = f.varint != 0;
      }
    } else if (kind == "Secret") {
      if (f.number == 2 || f.number == 4) {
        if (!MapEntry(f.bytes, &k, &v)) return absl::InvalidArgumentError("bad data");
        if (f.number == 2) {
          obj["data"][k] = absl::Base64Escape(v);
        } else {
          obj["stringData"][k] = v;
        }
      } else if (f.number == 3) {
        obj["type"] = std::string(f.bytes);
      } else if (f.number == 5) {
        obj["immutable"] = f.varint != 0;
      }
    } else if (kind == "ServiceAccount") {
      if (f.number == 4) obj["automountServiceAccountToken"] = f.varint != 0;
    } else if (kind == "Namespace") {
      if (f.number == 2) {
        std::vector<Field> spec;
        if (!Parse(f.bytes, &spec)) return absl::InvalidArgumentError("bad spec");
        for (const auto& s : spec) {
          if (s.number == 1) obj["spec"]["finalizers"].push_back(std::string(s.bytes));
        }
      }
    }
  }
  return obj;
}

}  // namespace gitops::testing
