#pragma once
// Rule management in the daemon: the configured rule sources compiled into
// the set new scans start with, and reloaded on request (the admin API,
// SIGHUP). A reload compiles from disk into a new set; only when that works
// does it replace the current one, atomically. Scans already running keep
// the set they started with (rule_holder snapshots); their reports name it.
//
// Several nodes on one store scan with one rule set: the store keeps the
// digest of the set the node that loaded rules last (its start, a reload)
// holds. Before claiming a scan (and when asked for its rules) a node
// compares it with its own; when they differ it compiles its rule files
// again, and takes the new set if it is the cluster's. A node whose files
// give another set claims no scans until they do (reports must name the
// cluster's set), and tries again when the cluster's set changes or on its
// own reload.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "borderscan/scanner/rule_set.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server {

// Where this node stands against the cluster's rule set.
struct rules_standing {
  std::optional<cluster_ruleset> cluster;  // none: the store has none (or could not be read)
  bool in_step = true;                     // this node serves the cluster's set
};

struct reload_result {
  bool ok = false;
  std::string digest;               // the set serving now (the new one, or the old one kept)
  std::string previous_digest;      // the set before the reload
  std::vector<std::string> errors;  // "file:line: message", one per compiler message, when !ok
};

class rules_service {
 public:
  // The hash sets to load, asked again at every reload (sets imported since
  // the last load join then), as "PATH:known-good|known-bad".
  using hashset_list = std::function<std::vector<std::string>()>;

  // Compiles the rules of `rule_paths` (the shipped rules when empty) and
  // the hash sets now (throws scan_error when they do not compile: the
  // daemon cannot start without rules); keeps the compiled file in
  // `compiled_dir`. `node` names this node in the store and the audit log.
  rules_service(std::vector<std::string> rule_paths, hashset_list hashsets, std::filesystem::path compiled_dir,
                report_store& store, const clock& clk, std::string node = {});

  rule_holder& holder() noexcept { return holder_; }
  const rule_holder& holder() const noexcept { return holder_; }

  // Compiles the sources from disk again. On success the new set serves
  // every scan that starts from now on; on failure the old one stays. Both
  // audited (rules_reloaded, rules_reload_failed) with the actor. One reload
  // at a time.
  // A successful reload becomes the cluster's set.
  reload_result reload(const actor& by);

  // Start-up: the set this node compiled becomes the cluster's (as a
  // reload would); audited as rules_reloaded when that changes it.
  void publish_at_start();

  // Follows the cluster's set when it changed (see above). True when this
  // node may claim a scan: it serves the cluster's set, or the store cannot
  // say (the claim then meets the same store). Cheap while nothing changed:
  // one read of the store.
  bool follow();
  rules_standing standing();

 private:
  rules_snapshot load() const;
  void publish(const actor& by, const std::string& cause, const std::string& previous_digest);
  std::string serving_digest() const { return holder_.snapshot().rules->info().digest; }

  std::vector<std::string> rule_paths_;
  hashset_list hashsets_;
  std::filesystem::path compiled_dir_;
  report_store& store_;
  const clock& clock_;
  std::string node_;
  rule_holder holder_;
  std::mutex reload_mutex_;
  // The cluster digest this node last compiled its files for without getting it.
  std::string unmatched_;
};

}  // namespace borderscan::server
