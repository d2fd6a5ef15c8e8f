#include "source-controller/git/pack_compaction.h"

#include <git2.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/runtime/memory_trim.h"

namespace gitops::source {
namespace {

namespace fs = std::filesystem;

absl::Status Libgit2Error(absl::string_view what) {
  const git_error* e = git_error_last();
  return absl::InternalError(
      absl::StrCat(what, ": ", e != nullptr && e->message != nullptr ? e->message : "unknown"));
}

struct PackBuilderDeleter {
  void operator()(git_packbuilder* p) const { git_packbuilder_free(p); }
};
struct RevwalkDeleter {
  void operator()(git_revwalk* w) const { git_revwalk_free(w); }
};
struct ReferenceIteratorDeleter {
  void operator()(git_reference_iterator* i) const { git_reference_iterator_free(i); }
};
struct ReferenceDeleter {
  void operator()(git_reference* r) const { git_reference_free(r); }
};
struct ObjectDeleter {
  void operator()(git_object* o) const { git_object_free(o); }
};

// pack-<name>.pack files in objects/pack, by name.
std::vector<std::string> PackNames(const std::string& git_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(fs::path(git_dir) / "objects" / "pack", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (absl::StartsWith(file, "pack-") && absl::EndsWith(file, ".pack")) {
      names.push_back(file.substr(5, file.size() - 10));
    }
  }
  return names;
}

// Adds what `ref` reaches: its commit's history through `walk`, and the
// annotated tag objects on the way to it.
absl::Status AddRef(git_repository* repo, git_reference* ref, git_packbuilder* pb,
                    git_revwalk* walk) {
  git_reference* resolved_raw = nullptr;
  if (git_reference_resolve(&resolved_raw, ref) != 0) return absl::OkStatus();  // dangling
  std::unique_ptr<git_reference, ReferenceDeleter> resolved(resolved_raw);
  const git_oid* target = git_reference_target(resolved.get());
  if (target == nullptr) return absl::OkStatus();
  git_object* obj_raw = nullptr;
  if (git_object_lookup(&obj_raw, repo, target, GIT_OBJECT_ANY) != 0) {
    return absl::OkStatus();  // a ref whose object is missing: nothing to keep
  }
  std::unique_ptr<git_object, ObjectDeleter> obj(obj_raw);
  if (git_object_type(obj.get()) == GIT_OBJECT_TAG &&
      git_packbuilder_insert_recur(pb, target, nullptr) != 0) {
    return Libgit2Error(absl::StrCat("pack tag ", git_reference_name(ref)));
  }
  git_object* commit = nullptr;
  if (git_object_peel(&commit, obj.get(), GIT_OBJECT_COMMIT) != 0) {
    // A tag of a tree or blob: insert_recur above took it whole.
    return absl::OkStatus();
  }
  const int rc = git_revwalk_push(walk, git_object_id(commit));
  git_object_free(commit);
  if (rc != 0) return Libgit2Error(absl::StrCat("walk ", git_reference_name(ref)));
  return absl::OkStatus();
}

}  // namespace

int CountPacks(const std::string& git_dir) { return static_cast<int>(PackNames(git_dir).size()); }

absl::StatusOr<int> CompactPacks(git_repository* repo, const std::string& git_dir, int max_packs) {
  const std::vector<std::string> before = PackNames(git_dir);
  if (static_cast<int>(before.size()) <= max_packs) return static_cast<int>(before.size());

  git_packbuilder* pb_raw = nullptr;
  if (git_packbuilder_new(&pb_raw, repo) != 0) return Libgit2Error("new pack builder");
  std::unique_ptr<git_packbuilder, PackBuilderDeleter> pb(pb_raw);
  // One thread: the controller's workers are busy on the other cores.
  git_packbuilder_set_threads(pb.get(), 1);
  git_revwalk* walk_raw = nullptr;
  if (git_revwalk_new(&walk_raw, repo) != 0) return Libgit2Error("new revision walk");
  std::unique_ptr<git_revwalk, RevwalkDeleter> walk(walk_raw);

  git_reference_iterator* it_raw = nullptr;
  if (git_reference_iterator_new(&it_raw, repo) != 0) return Libgit2Error("list refs");
  std::unique_ptr<git_reference_iterator, ReferenceIteratorDeleter> it(it_raw);
  int refs = 0;
  git_reference* ref_raw = nullptr;
  int rc = 0;
  while ((rc = git_reference_next(&ref_raw, it.get())) == 0) {
    std::unique_ptr<git_reference, ReferenceDeleter> ref(ref_raw);
    absl::Status added = AddRef(repo, ref.get(), pb.get(), walk.get());
    if (!added.ok()) return added;
    ++refs;
  }
  if (rc != GIT_ITEROVER) return Libgit2Error("list refs");
  // No refs: nothing is known to be needed; leave the cache as it is.
  if (refs == 0) return static_cast<int>(before.size());
  if (git_packbuilder_insert_walk(pb.get(), walk.get()) != 0) {
    return Libgit2Error("pack reachable objects");
  }
  if (git_packbuilder_write(pb.get(), nullptr, 0, nullptr, nullptr) != 0) {
    return Libgit2Error("write pack");
  }
  const std::string kept = git_packbuilder_name(pb.get());

  // The new pack holds every reachable object: the old ones can go. On
  // Linux the maps the repository still holds on them stay valid.
  const fs::path dir = fs::path(git_dir) / "objects" / "pack";
  for (const std::string& name : before) {
    if (name == kept) continue;
    for (const char* ext : {".pack", ".idx", ".rev", ".keep"}) {
      std::error_code ec;
      fs::remove(dir / absl::StrCat("pack-", name, ext), ec);
    }
  }
  // The pack builder's object list and delta window were the largest
  // allocations of this fetch: give the freed pages back to the system
  // rather than keep the high-water mark resident.
  pb.reset();
  common::TrimFreedMemory();
  return CountPacks(git_dir);
}

}  // namespace gitops::source
