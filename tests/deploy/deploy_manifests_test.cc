// deploy/ checked against the code: every YAML file parses; the objects the driver needs exist
// with the right names; the driver container only uses flags vdisk-csi has; every sidecar and
// kubelet find the driver's socket where the driver puts it; classes point at configured pools.
#include <dirent.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/metrics_server.h"
#include "csi/config.h"
#include "csi/driver.h"
#include "csi/node_attach.h"
#include "csi/vhost_publish.h"

namespace vdisk::csi {
namespace {

std::string SourceDir() {
  const char* d = std::getenv("VDISK_SOURCE_DIR");
  return d ? d : ".";
}

void Walk(const std::string& dir, std::vector<std::string>* out) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (auto* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = dir + "/" + n;
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) Walk(p, out);
    else if (n.ends_with(".yaml") || n.ends_with(".yml")) out->push_back(p);
  }
  closedir(d);
}

struct Object {
  std::string file, kind, name, ns;
  YAML::Node node;
};

class DeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> files;
    Walk(SourceDir() + "/deploy", &files);
    ASSERT_FALSE(files.empty()) << "no manifests under " << SourceDir() << "/deploy";
    for (const auto& f : files) {
      std::vector<YAML::Node> docs;
      try {
        docs = YAML::LoadAllFromFile(f);
      } catch (const YAML::Exception& e) {
        ADD_FAILURE() << f << ": " << e.what();
        continue;
      }
      for (const auto& d : docs) {
        if (!d || d.IsNull()) continue;
        ASSERT_TRUE(d.IsMap()) << f << ": a document is not a map";
        ASSERT_TRUE(d["apiVersion"] && d["kind"]) << f << ": apiVersion and kind are required";
        Object o{f, d["kind"].as<std::string>(), "", "", d};
        if (o.kind != "Kustomization") {
          // metadata.name, or generateName for objects created anew each time (Jobs).
          ASSERT_TRUE(d["metadata"] && (d["metadata"]["name"] || d["metadata"]["generateName"]))
              << f << ": metadata.name (or generateName) is required";
          o.name = d["metadata"]["name"] ? d["metadata"]["name"].as<std::string>()
                                         : d["metadata"]["generateName"].as<std::string>();
          if (d["metadata"]["namespace"]) o.ns = d["metadata"]["namespace"].as<std::string>();
        }
        objects_.push_back(o);
      }
    }
  }

  const Object* Find(const std::string& kind, const std::string& name) const {
    for (const auto& o : objects_)
      if (o.kind == kind && o.name == name) return &o;
    return nullptr;
  }
  std::vector<const Object*> All(const std::string& kind) const {
    std::vector<const Object*> out;
    for (const auto& o : objects_)
      if (o.kind == kind) out.push_back(&o);
    return out;
  }

  std::vector<Object> objects_;
};

// "--name=value" / "--name value" args of a container.
std::map<std::string, std::string> Flags(const YAML::Node& container) {
  std::map<std::string, std::string> out;
  std::vector<std::string> args;
  for (const auto& a : container["args"]) args.push_back(a.as<std::string>());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!a.starts_with("-")) continue;
    auto eq = a.find('=');
    if (eq != std::string::npos) out[a.substr(0, eq)] = a.substr(eq + 1);
    else if (i + 1 < args.size() && !args[i + 1].starts_with("-")) out[a] = args[++i];
    else out[a] = "";
  }
  return out;
}

YAML::Node Container(const YAML::Node& podspec, const std::string& image_part) {
  for (const auto& c : podspec["containers"])
    if (c["image"].as<std::string>().find(image_part) != std::string::npos) return c;
  return YAML::Node();
}

// Where a path inside a container really lives: (volume name, path inside the volume).
std::pair<std::string, std::string> Resolve(const YAML::Node& container, const std::string& path) {
  std::pair<std::string, std::string> best;
  size_t best_len = 0;
  for (const auto& m : container["volumeMounts"]) {
    std::string mp = m["mountPath"].as<std::string>();
    if ((path == mp || path.starts_with(mp + "/")) && mp.size() > best_len) {
      best = {m["name"].as<std::string>(), path.substr(mp.size())};
      best_len = mp.size();
    }
  }
  return best;
}

std::string SocketOf(const std::string& endpoint) {
  return endpoint.starts_with("unix://") ? endpoint.substr(7) : endpoint;
}

std::string DriverHelp() {
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  std::string cmd = std::string(bin ? bin : ".") + "/csi/vdisk-csi --help 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST_F(DeployTest, CoreObjectsExist) {
  const Object* driver = Find("CSIDriver", kDefaultDriverName);
  ASSERT_NE(driver, nullptr) << "CSIDriver " << kDefaultDriverName;
  EXPECT_FALSE(driver->node["spec"]["attachRequired"].as<bool>()) << "vdisk has no ControllerPublish";
  EXPECT_TRUE(driver->node["spec"]["storageCapacity"].as<bool>());
  ASSERT_NE(Find("Namespace", "vdisk-system"), nullptr);
  ASSERT_NE(Find("Deployment", "vdisk-csi-controller"), nullptr);
  ASSERT_NE(Find("DaemonSet", "vdisk-csi-node"), nullptr);
  ASSERT_NE(Find("ConfigMap", "vdisk-csi-config"), nullptr);
  ASSERT_NE(Find("VolumeSnapshotClass", "vdisk-local-snapclass"), nullptr);
  ASSERT_NE(Find("StorageClass", "vdisk-local-block"), nullptr);
  ASSERT_NE(Find("StorageClass", "vdisk-local-filesystem"), nullptr);
  // Namespaced objects of ours are in the namespace that exists.
  for (const auto& o : objects_)
    if (!o.ns.empty() && o.file.find("/deploy/backup/") == std::string::npos &&
        o.file.find("/deploy/vhost/") == std::string::npos) {
      EXPECT_EQ(o.ns, "vdisk-system") << o.kind << " " << o.name;
    }
}

TEST_F(DeployTest, DriverContainersUseOnlyRealFlagsAndSidecarsFindTheSocket) {
  const std::string help = DriverHelp();
  ASSERT_NE(help.find("--endpoint"), std::string::npos) << "cannot run vdisk-csi --help: " << help;
  struct Expect {
    const char* kind;
    const char* name;
    std::vector<std::string> sidecars;
    const char* role;
  };
  for (const Expect& e : {Expect{"Deployment", "vdisk-csi-controller",
                                 {"csi-provisioner", "csi-snapshotter", "csi-resizer", "livenessprobe"}, "controller"},
                          Expect{"DaemonSet", "vdisk-csi-node", {"csi-node-driver-registrar", "livenessprobe"}, "node"},
                          Expect{"Deployment", "vdisk-csi-snapshot-metadata", {"csi-snapshot-metadata"}, "controller"}}) {
    SCOPED_TRACE(e.name);
    const Object* o = Find(e.kind, e.name);
    ASSERT_NE(o, nullptr);
    YAML::Node pod = o->node["spec"]["template"]["spec"];
    YAML::Node driver;
    for (const auto& c : pod["containers"])
      if (c["name"].as<std::string>() == "vdisk-csi") driver.reset(static_cast<const YAML::Node&>(c));
    ASSERT_TRUE(driver) << "no vdisk-csi container";
    auto flags = Flags(driver);
    auto has_flag = [&](const std::string& flag) {
      for (size_t pos = help.find(flag); pos != std::string::npos; pos = help.find(flag, pos + 1)) {
        char next = pos + flag.size() < help.size() ? help[pos + flag.size()] : ' ';
        if (!std::isalnum(static_cast<unsigned char>(next)) && next != '-') return true;
      }
      return false;
    };
    for (const auto& [flag, value] : flags) {
      if (flag.starts_with("--")) {
        EXPECT_TRUE(has_flag(flag)) << "vdisk-csi has no flag " << flag;
      }
    }
    EXPECT_EQ(flags["--role"], e.role);
    ASSERT_TRUE(flags["--endpoint"].starts_with("unix:///"));
    auto sock = Resolve(driver, SocketOf(flags["--endpoint"]));
    ASSERT_FALSE(sock.first.empty()) << "the driver's socket is not on a shared volume";
    // The config file is where --config says, from the ConfigMap, and it parses.
    auto cfg = Resolve(driver, flags["--config"]);
    ASSERT_FALSE(cfg.first.empty());
    bool from_configmap = false;
    for (const auto& v : pod["volumes"])
      if (v["name"].as<std::string>() == cfg.first && v["configMap"])
        from_configmap = v["configMap"]["name"].as<std::string>() == "vdisk-csi-config";
    EXPECT_TRUE(from_configmap);

    for (const auto& image : e.sidecars) {
      YAML::Node side = Container(pod, "sig-storage/" + image + ":");
      ASSERT_TRUE(side) << "missing sidecar " << image;
      auto sf = Flags(side);
      ASSERT_TRUE(sf.contains("--csi-address")) << image;
      EXPECT_EQ(Resolve(side, sf["--csi-address"]), sock) << image << " does not see the driver's socket";
      if (image == "livenessprobe") {
        // The driver container's liveness probe asks the livenessprobe sidecar's port.
        const std::string port = sf["--health-port"];
        bool matched = false;
        for (const auto& p : driver["ports"])
          if (p["name"].as<std::string>() == driver["livenessProbe"]["httpGet"]["port"].as<std::string>())
            matched = std::to_string(p["containerPort"].as<int>()) == port;
        EXPECT_TRUE(matched) << "livenessProbe port != livenessprobe --health-port " << port;
      }
      if (image == "csi-node-driver-registrar") {
        // kubelet reaches the socket on the host: hostPath of the socket volume + the same path.
        std::string host;
        for (const auto& v : pod["volumes"])
          if (v["name"].as<std::string>() == sock.first && v["hostPath"]) host = v["hostPath"]["path"].as<std::string>();
        ASSERT_FALSE(host.empty()) << "the node socket must be on a hostPath";
        EXPECT_EQ(sf["--kubelet-registration-path"], host + sock.second);
        EXPECT_EQ(host, std::string("/var/lib/kubelet/plugins/") + kDefaultDriverName);
        auto reg = Resolve(side, "/registration");
        bool reg_ok = false;
        for (const auto& v : pod["volumes"])
          if (v["name"].as<std::string>() == reg.first && v["hostPath"])
            reg_ok = v["hostPath"]["path"].as<std::string>() == "/var/lib/kubelet/plugins_registry";
        EXPECT_TRUE(reg_ok) << "registrar must write to /var/lib/kubelet/plugins_registry";
      }
    }
    if (std::string(e.role) == "node") {
      EXPECT_EQ(flags["--allowed-target-root"], "/var/lib/kubelet");
      EXPECT_TRUE(driver["securityContext"]["privileged"].as<bool>());
      bool bidirectional = false;
      for (const auto& m : driver["volumeMounts"])
        if (m["mountPath"].as<std::string>() == "/var/lib/kubelet")
          bidirectional = m["mountPropagation"] && m["mountPropagation"].as<std::string>() == "Bidirectional";
      EXPECT_TRUE(bidirectional) << "bind mounts under /var/lib/kubelet must propagate to the host";
      // attach: vhost-user: the socket directories fit socket addresses and live on a hostPath
      // (a restarted plugin serves them again where the pods' mounts point).
      ASSERT_TRUE(flags.contains("--vhost-dir"));
      EXPECT_TRUE(CheckVhostDir(flags["--vhost-dir"]).ok()) << CheckVhostDir(flags["--vhost-dir"]);
      auto vhost = Resolve(driver, flags["--vhost-dir"]);
      bool on_host = false;
      for (const auto& v : pod["volumes"])
        if (v["name"].as<std::string>() == vhost.first) on_host = static_cast<bool>(v["hostPath"]);
      EXPECT_TRUE(on_host) << "--vhost-dir must be on a hostPath volume";
      EXPECT_EQ(flags["--vhost-socket-group"], "107") << "KubeVirt's QEMU runs in group 107";
    }
    if (std::string(e.name) == "vdisk-csi-snapshot-metadata") {
      // The sidecar needs the capability advertised, and its TLS material from the secret.
      EXPECT_TRUE(flags.contains("--snapshot-metadata"));
      YAML::Node side = Container(pod, "sig-storage/csi-snapshot-metadata:");
      auto sf = Flags(side);
      auto cert = Resolve(side, sf["--tls-cert"]);
      bool from_secret = false;
      for (const auto& v : pod["volumes"])
        if (v["name"].as<std::string>() == cert.first && v["secret"])
          from_secret = v["secret"]["secretName"].as<std::string>() == "vdisk-csi-snapshot-metadata-certs";
      EXPECT_TRUE(from_secret) << "--tls-cert must come from the secret make-certs.sh creates";
      const Object* svc = Find("Service", "vdisk-csi-snapshot-metadata");
      ASSERT_NE(svc, nullptr);
      EXPECT_EQ(svc->node["spec"]["ports"][0]["targetPort"].as<std::string>(), sf["--port"]);
      const Object* sms = Find("SnapshotMetadataService", kDefaultDriverName);
      ASSERT_NE(sms, nullptr) << "the SnapshotMetadataService object is named after the driver";
      EXPECT_EQ(sms->node["spec"]["address"].as<std::string>(),
                "vdisk-csi-snapshot-metadata.vdisk-system:" + svc->node["spec"]["ports"][0]["port"].as<std::string>());
    }
    // The pod's service account exists.
    EXPECT_NE(Find("ServiceAccount", pod["serviceAccountName"].as<std::string>()), nullptr);
  }
}

TEST_F(DeployTest, ClassesPointAtTheDriverAndConfiguredPools) {
  const Object* cm = Find("ConfigMap", "vdisk-csi-config");
  ASSERT_NE(cm, nullptr);
  auto cfg = ParseConfig(cm->node["data"]["config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  std::set<std::string> pools;
  for (const auto& p : cfg->pools) pools.insert(p.name);
  EXPECT_TRUE(pools.contains("local"));
  if (cfg->driver_name) { EXPECT_EQ(*cfg->driver_name, kDefaultDriverName); }

  std::set<std::string> classes;
  for (const Object* sc : All("StorageClass")) {
    if (sc->node["provisioner"].as<std::string>() != kDefaultDriverName) continue;
    classes.insert(sc->name);
    if (sc->node["parameters"] && sc->node["parameters"]["pool"]) {
      EXPECT_TRUE(pools.contains(sc->node["parameters"]["pool"].as<std::string>())) << sc->name;
    }
    EXPECT_TRUE(sc->node["allowVolumeExpansion"].as<bool>()) << sc->name;
    EXPECT_EQ(sc->node["volumeBindingMode"].as<std::string>(), "WaitForFirstConsumer")
        << sc->name << ": the local pool is node-local";
  }
  EXPECT_GE(classes.size(), 2u);
  // Node attach parameters are valid, and the vhost-user class exists (deploy/vhost/).
  bool vhost_class = false;
  for (const Object* sc : All("StorageClass")) {
    if (!sc->node["parameters"]) continue;
    blockdev::Params params;
    for (const auto& kv : sc->node["parameters"]) params[kv.first.as<std::string>()] = kv.second.as<std::string>();
    auto spec = ParseAttachSpec(params);
    EXPECT_TRUE(spec.ok()) << sc->name << ": " << spec.status();
    vhost_class |= spec.ok() && spec->vhost_user;
  }
  EXPECT_TRUE(vhost_class) << "deploy/vhost/storageclass.yaml";
  // PVCs of a vhost-user class ask for volumeMode: Filesystem (Block is refused).
  for (const Object* pvc : All("PersistentVolumeClaim"))
    if (pvc->node["spec"]["storageClassName"] &&
        pvc->node["spec"]["storageClassName"].as<std::string>() == "vdisk-local-vhost") {
      EXPECT_EQ(pvc->node["spec"]["volumeMode"].as<std::string>(), "Filesystem") << pvc->name;
    }
  std::set<std::string> snapclasses;
  for (const Object* vsc : All("VolumeSnapshotClass"))
    if (vsc->node["driver"].as<std::string>() == kDefaultDriverName) snapclasses.insert(vsc->name);
  EXPECT_FALSE(snapclasses.empty());
  // A StorageProfile per class, with the volume mode its name promises.
  for (const auto& name : {"vdisk-local-block", "vdisk-local-filesystem"}) {
    const Object* sp = Find("StorageProfile", name);
    ASSERT_NE(sp, nullptr) << name;
    EXPECT_TRUE(classes.contains(name));
    const std::string want = std::string(name).ends_with("block") ? "Block" : "Filesystem";
    for (const auto& set : sp->node["spec"]["claimPropertySets"])
      EXPECT_EQ(set["volumeMode"].as<std::string>(), want) << name;
    if (sp->node["spec"]["snapshotClass"]) {
      EXPECT_TRUE(snapclasses.contains(sp->node["spec"]["snapshotClass"].as<std::string>()));
    }
  }
}

TEST_F(DeployTest, RbacBindingsAreConsistent) {
  for (const Object* b : All("ClusterRoleBinding")) {
    if (b->file.find("/deploy/backup/") != std::string::npos || b->file.find("/deploy/vhost/") != std::string::npos)
      continue;
    EXPECT_NE(Find("ClusterRole", b->node["roleRef"]["name"].as<std::string>()), nullptr) << b->name;
    for (const auto& s : b->node["subjects"])
      EXPECT_NE(Find("ServiceAccount", s["name"].as<std::string>()), nullptr) << b->name;
  }
  // The provisioner may create PVs and the snapshotter may update snapshot contents.
  auto allows = [&](const std::string& role, const std::string& resource, const std::string& verb) {
    const Object* r = Find("ClusterRole", role);
    if (!r) return false;
    for (const auto& rule : r->node["rules"]) {
      bool res = false, v = false;
      for (const auto& x : rule["resources"]) res |= x.as<std::string>() == resource;
      for (const auto& x : rule["verbs"]) v |= x.as<std::string>() == verb;
      if (res && v) return true;
    }
    return false;
  };
  EXPECT_TRUE(allows("vdisk-csi-provisioner", "persistentvolumes", "create"));
  EXPECT_TRUE(allows("vdisk-csi-provisioner", "csistoragecapacities", "create"));
  EXPECT_TRUE(allows("vdisk-csi-snapshotter", "volumesnapshotcontents/status", "update"));
  EXPECT_TRUE(allows("vdisk-csi-resizer", "persistentvolumeclaims/status", "patch"));
}

TEST_F(DeployTest, KustomizationListsExistingFilesAndContainerfileBuildsTheDriver) {
  std::ifstream k(SourceDir() + "/deploy/kustomization.yaml");
  ASSERT_TRUE(k.good());
  YAML::Node kust = YAML::LoadFile(SourceDir() + "/deploy/kustomization.yaml");
  for (const auto& r : kust["resources"]) {
    std::ifstream f(SourceDir() + "/deploy/" + r.as<std::string>());
    EXPECT_TRUE(f.good()) << r.as<std::string>();
  }
  std::ifstream cf(SourceDir() + "/deploy/Containerfile");
  ASSERT_TRUE(cf.good());
  std::stringstream ss;
  ss << cf.rdbuf();
  EXPECT_NE(ss.str().find("vdisk-csi"), std::string::npos);
  EXPECT_NE(ss.str().find("ENTRYPOINT"), std::string::npos);
  // Every image the pods use is the driver image the Containerfile builds, or a sig-storage one.
  for (const char* kind : {"Deployment", "DaemonSet"})
    for (const Object* o : All(kind)) {
      if (o->file.find("/deploy/backup/") != std::string::npos || o->file.find("/deploy/vhost/") != std::string::npos)
        continue;
      for (const auto& c : o->node["spec"]["template"]["spec"]["containers"]) {
        std::string image = c["image"].as<std::string>();
        EXPECT_TRUE(image.starts_with("localhost/vdisk-csi:") || image.starts_with("registry.k8s.io/sig-storage/"))
            << image;
      }
    }
}

// Every driver serves metrics on its container's `metrics` port; the metrics Services select the
// driver pods and name that port; the ServiceMonitor selects the Services and their port.
TEST_F(DeployTest, MetricsAreServedWhereTheServicesAndTheServiceMonitorLook) {
  std::vector<const Object*> services;
  for (const Object* svc : All("Service"))
    if (svc->node["metadata"]["labels"] && svc->node["metadata"]["labels"]["vdisk.csi.io/metrics"])
      services.push_back(svc);
  ASSERT_EQ(services.size(), 2u) << "one metrics Service for the controller, one for the nodes";
  for (const char* workload : {"vdisk-csi-controller", "vdisk-csi-node"}) {
    SCOPED_TRACE(workload);
    const Object* w = Find(std::string(workload) == "vdisk-csi-node" ? "DaemonSet" : "Deployment", workload);
    ASSERT_NE(w, nullptr);
    YAML::Node tmpl = w->node["spec"]["template"];
    YAML::Node driver;
    for (const auto& c : tmpl["spec"]["containers"])
      if (c["name"].as<std::string>() == "vdisk-csi") driver.reset(static_cast<const YAML::Node&>(c));
    ASSERT_TRUE(driver);
    auto flags = Flags(driver);
    ASSERT_TRUE(flags.contains("--metrics-address"));
    auto hp = metrics::ParseHostPort(flags["--metrics-address"]);
    ASSERT_TRUE(hp.ok()) << hp.status();
    bool port_named = false;
    for (const auto& p : driver["ports"])
      if (p["name"].as<std::string>() == "metrics") port_named = p["containerPort"].as<int>() == hp->second;
    EXPECT_TRUE(port_named) << "container port 'metrics' != --metrics-address port " << hp->second;
    // Exactly one metrics Service selects this pod template, by its target port name.
    int selecting = 0;
    for (const Object* svc : services) {
      bool all = true;
      for (const auto& kv : svc->node["spec"]["selector"]) {
        auto have = tmpl["metadata"]["labels"][kv.first.as<std::string>()];
        all = all && have && have.as<std::string>() == kv.second.as<std::string>();
      }
      if (!all) continue;
      ++selecting;
      EXPECT_EQ(svc->ns, w->ns);
      EXPECT_EQ(svc->node["spec"]["ports"][0]["targetPort"].as<std::string>(), "metrics");
      EXPECT_EQ(svc->node["spec"]["ports"][0]["name"].as<std::string>(), "metrics");
    }
    EXPECT_EQ(selecting, 1);
  }
  const Object* sm = Find("ServiceMonitor", "vdisk-csi");
  ASSERT_NE(sm, nullptr);
  for (const Object* svc : services) {
    for (const auto& kv : sm->node["spec"]["selector"]["matchLabels"])
      EXPECT_EQ(svc->node["metadata"]["labels"][kv.first.as<std::string>()].as<std::string>(),
                kv.second.as<std::string>()) << svc->name;
  }
  EXPECT_EQ(sm->node["spec"]["endpoints"][0]["port"].as<std::string>(), "metrics");
  EXPECT_EQ(sm->node["spec"]["endpoints"][0]["path"].as<std::string>(), "/metrics");
}

// Every series the Grafana dashboard queries is one the code exports (a renamed metric must not
// leave an empty panel behind).
TEST(Dashboard, QueriesOnlySeriesTheCodeExports) {
  std::ifstream in(SourceDir() + "/deploy/monitoring/grafana-dashboard.json");
  ASSERT_TRUE(in) << "deploy/monitoring/grafana-dashboard.json";
  auto dash = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(dash.is_discarded()) << "the dashboard is not valid JSON";
  // Metric names the sources register: string literals "vdisk_..." in the code.
  std::set<std::string> exported;
  const std::regex literal("\"(vdisk_[a-z_]+)\"");
  for (const char* dir : {"common", "csi", "blockdev", "clone", "backup"}) {
    std::vector<std::string> files;
    std::function<void(const std::string&)> walk = [&](const std::string& d) {
      DIR* dp = opendir(d.c_str());
      if (!dp) return;
      while (auto* e = readdir(dp)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string p = d + "/" + n;
        if (e->d_type == DT_DIR) walk(p);
        else if (n.ends_with(".cc") && !n.ends_with("_test.cc")) files.push_back(p);
      }
      closedir(dp);
    };
    walk(SourceDir() + "/" + dir);
    for (const auto& f : files) {
      std::ifstream src(f);
      std::string text((std::istreambuf_iterator<char>(src)), {});
      for (std::sregex_iterator it(text.begin(), text.end(), literal), end; it != end; ++it)
        exported.insert((*it)[1]);
    }
  }
  ASSERT_TRUE(exported.contains("vdisk_csi_calls_total"));
  int queries = 0;
  const std::regex used("vdisk_[a-z_]+");
  for (const auto& panel : dash["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const auto& t : panel["targets"]) {
      const std::string expr = t.value("expr", "");
      ++queries;
      for (std::sregex_iterator it(expr.begin(), expr.end(), used), end; it != end; ++it) {
        std::string name = (*it)[0];
        for (const char* suffix : {"_bucket", "_sum", "_count"})
          if (!exported.contains(name) && name.ends_with(suffix))
            name = name.substr(0, name.size() - std::string(suffix).size());
        EXPECT_TRUE(exported.contains(name)) << panel.value("title", "") << ": " << (*it)[0];
      }
    }
  }
  EXPECT_GT(queries, 10);
}

}  // namespace
}  // namespace vdisk::csi
