#include "common/controller/controller.h"

#include "absl/time/clock.h"
#include "common/metrics/metrics.h"

namespace gitops::common {

Controller::Controller(ControllerOptions options, WorkQueue& queue, ReconcileFn reconcile)
    : options_(std::move(options)), queue_(queue), reconcile_(std::move(reconcile)) {
  Metrics& m = Metrics::Global();
  m.DefineCounter("controller_runtime_reconcile_total",
                  "Total number of reconciliations per controller");
  m.DefineCounter("controller_runtime_reconcile_errors_total",
                  "Total number of reconciliation errors per controller");
  m.DefineGauge("controller_runtime_active_workers",
                "Number of currently used workers per controller");
}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  if (!workers_.empty()) return;
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Worker(); });
  }
}

void Controller::Stop() {
  queue_.ShutDown();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void Controller::Worker() {
  Metrics& m = Metrics::Global();
  const MetricLabels labels = {{"controller", options_.name}};
  while (auto key = queue_.Get()) {
    m.Add("controller_runtime_active_workers", labels, 1);
    ReconcileResult r = reconcile_(*key);
    m.Add("controller_runtime_active_workers", labels, -1);
    reconciles_++;
    if (!r.status.ok()) {
      m.Add("controller_runtime_reconcile_total",
            {{"controller", options_.name}, {"result", "error"}});
      m.Add("controller_runtime_reconcile_errors_total", labels);
      queue_.AddRateLimited(*key);
    } else {
      queue_.Forget(*key);
      if (r.requeue_after > absl::ZeroDuration()) {
        m.Add("controller_runtime_reconcile_total",
              {{"controller", options_.name}, {"result", "requeue_after"}});
        queue_.AddAfter(*key, Jitter(r.requeue_after, options_.requeue_jitter));
      } else {
        m.Add("controller_runtime_reconcile_total",
              {{"controller", options_.name}, {"result", "success"}});
      }
    }
    queue_.Done(*key);
  }
}

}  // namespace gitops::common
