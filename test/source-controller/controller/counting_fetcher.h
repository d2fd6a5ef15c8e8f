// A GitFetcher that forwards to a real one and counts the calls per URL, so a
// test can prove what the reconciler asked the remote for. An optional hook
// runs before each call to the remote, ResolveRemote or FetchAndCheckout
// (e.g. to hold one source mid-reconcile).
#ifndef GITOPS_TEST_SOURCE_CONTROLLER_CONTROLLER_COUNTING_FETCHER_H_
#define GITOPS_TEST_SOURCE_CONTROLLER_CONTROLLER_COUNTING_FETCHER_H_

#include <functional>
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "source-controller/git/git_fetcher.h"

namespace gitops::source {

// Thread-safe.
class CountingFetcher : public GitFetcher {
 public:
  explicit CountingFetcher(GitFetcher* real) : real_(real) {}

  absl::StatusOr<GitRevision> ResolveRemote(const GitFetchOptions& options) override {
    std::function<void(const GitFetchOptions&)> hook;
    {
      absl::MutexLock lock(&mu_);
      ++resolves_[options.url];
      hook = before_remote_;
    }
    if (hook) hook(options);
    return real_->ResolveRemote(options);
  }

  absl::StatusOr<GitRevision> FetchAndCheckout(const GitFetchOptions& options,
                                               const std::string& cache_dir,
                                               const std::string& checkout_dir) override {
    std::function<void(const GitFetchOptions&)> hook;
    {
      absl::MutexLock lock(&mu_);
      ++fetches_[options.url];
      hook = before_remote_;
    }
    if (hook) hook(options);
    return real_->FetchAndCheckout(options, cache_dir, checkout_dir);
  }

  // Calls so far for `url`, or for every URL when empty.
  int resolves(const std::string& url = "") const { return Count(resolves_, url); }
  int fetches(const std::string& url = "") const { return Count(fetches_, url); }

  void set_before_remote(std::function<void(const GitFetchOptions&)> hook) {
    absl::MutexLock lock(&mu_);
    before_remote_ = std::move(hook);
  }

 private:
  int Count(const std::map<std::string, int>& m, const std::string& url) const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [u, c] : m) {
      if (url.empty() || u == url) n += c;
    }
    return n;
  }

  GitFetcher* const real_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> resolves_;
  std::map<std::string, int> fetches_;
  std::function<void(const GitFetchOptions&)> before_remote_;
};

}  // namespace gitops::source

#endif  // GITOPS_TEST_SOURCE_CONTROLLER_CONTROLLER_COUNTING_FETCHER_H_
