#pragma once
// Rule management in the daemon: the configured rule sources compiled into
// the set new scans start with, and reloaded on request (the admin API,
// SIGHUP). A reload compiles from disk into a new set; only when that works
// does it replace the current one, atomically. Scans already running keep
// the set they started with (rule_holder snapshots); their reports name it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "borderscan/scanner/rule_set.hpp"
#include "borderscan/server/report_store.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/system.hpp"

namespace borderscan::server {

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
  // `compiled_dir`.
  rules_service(std::vector<std::string> rule_paths, hashset_list hashsets, std::filesystem::path compiled_dir,
                report_store& store, const clock& clk);

  rule_holder& holder() noexcept { return holder_; }
  const rule_holder& holder() const noexcept { return holder_; }

  // Compiles the sources from disk again. On success the new set serves
  // every scan that starts from now on; on failure the old one stays. Both
  // audited (rules_reloaded, rules_reload_failed) with the actor. One reload
  // at a time.
  reload_result reload(const actor& by);

 private:
  rules_snapshot load() const;

  std::vector<std::string> rule_paths_;
  hashset_list hashsets_;
  std::filesystem::path compiled_dir_;
  report_store& store_;
  const clock& clock_;
  rule_holder holder_;
  std::mutex reload_mutex_;
};

}  // namespace borderscan::server
