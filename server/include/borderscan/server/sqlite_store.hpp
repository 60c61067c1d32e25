#pragma once
// The embedded report_store: one SQLite file in WAL mode, schema migrations
// versioned in code (PRAGMA user_version). One connection behind a mutex:
// every call is short, and SQLite serialises writers anyway.

#include <filesystem>
#include <memory>
#include <mutex>

#include "borderscan/server/report_store.hpp"

struct sqlite3;

namespace borderscan::server {
namespace store_rules {
struct running_settlement;
}

class sqlite_report_store final : public report_store {
 public:
  // Opens (creating if needed) and migrates; throws std::runtime_error with
  // the path and SQLite's message when that fails. reports_dir: where report
  // documents of an older schema are moved to (default: beside the file, in
  // "reports").
  explicit sqlite_report_store(const std::filesystem::path& file, std::filesystem::path reports_dir = {});
  ~sqlite_report_store() override;

  // Latest schema version this build knows.
  static int schema_version() noexcept;
  int current_version();

  void add_scan(scan_record& scan, const actor& by) override;
  std::optional<scan_record> find_scan(std::string_view id) override;
  std::optional<scan_record> claim_next(std::int64_t now_ms, const node_lease& lease) override;
  std::vector<std::string> renew_leases(const node_lease& lease, std::int64_t now_ms) override;
  std::size_t requeue_expired(unsigned max_attempts, std::int64_t now_ms, std::int64_t keep_failed_ms) override;
  void requeue(std::string_view id, std::string_view reason, bool count_attempt) override;
  std::size_t recover_running(std::string_view node, unsigned max_attempts, std::int64_t now_ms,
                              std::int64_t keep_failed_ms) override;
  void begin_report(std::string_view id) override;
  void add_report_rows(std::string_view id, const std::vector<report_file_row>& rows) override;
  void add_report_findings(std::string_view id, const std::vector<report_finding_row>& rows) override;
  void complete(std::string_view id, const stored_report& report, std::int64_t now_ms) override;
  void set_progress(std::string_view id, std::string_view progress_json) override;
  void fail(std::string_view id, std::string_view reason, std::int64_t now_ms) override;
  bool cancel_queued(std::string_view id, std::int64_t now_ms, const actor& by) override;
  void mark_cancelled(std::string_view id, std::int64_t now_ms, const actor& by) override;
  void keep_image(std::string_view id, std::int64_t until_ms, std::int64_t now_ms) override;
  std::vector<scan_record> expired_images(std::int64_t now_ms) override;
  void image_deleted(std::string_view id, std::string_view reason, std::int64_t now_ms) override;
  audit_page list_audit(const audit_filter& filter) override;
  void record(std::string_view event, std::string_view scan_id, const nlohmann::json& detail, const actor& by,
              std::int64_t now_ms) override;
  audit_check verify_audit() override;
  purge_result purge(std::string_view id, const actor& by, std::int64_t now_ms) override;
  bool add_review(std::string_view id, const review_record& review, const actor& by) override;
  std::optional<std::vector<review_record>> list_reviews(std::string_view id) override;
  disposition_result add_disposition(std::string_view id, const disposition_record& mark, const actor& by) override;
  std::optional<std::vector<disposition_record>> list_dispositions(std::string_view id) override;
  hash_page find_by_hash(const hash_query& q) override;
  bool add_token(const token_record& token, const actor& by) override;
  std::vector<token_record> list_tokens() override;
  bool revoke_token(std::string_view name, const actor& by, std::int64_t now_ms) override;
  void add_evidence(std::string_view id, const std::vector<evidence_record>& kept, std::int64_t now_ms) override;
  std::optional<evidence_record> find_evidence(std::string_view id, std::string_view sha256) override;
  std::vector<std::pair<std::string, evidence_record>> expired_evidence(std::int64_t now_ms) override;
  void evidence_expired(std::string_view id, std::string_view sha256, std::int64_t now_ms) override;
  std::optional<std::string> find_file(std::string_view id, std::int64_t index) override;
  std::optional<stored_report> find_report(std::string_view id) override;
  report_page list_reports(const report_filter& filter) override;
  std::optional<file_page> list_files(std::string_view id, const file_filter& filter) override;
  std::optional<std::vector<file_type_count>> file_types(std::string_view id) override;
  std::size_t count(scan_status status) override;
  std::vector<scan_record> active_scans() override;
  std::vector<std::string> live_spool_paths() override;
  std::optional<cluster_ruleset> cluster_rules() override;
  std::optional<cluster_ruleset> set_cluster_rules(const cluster_ruleset& rules) override;
  bool writable() override;

 private:
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  sqlite3* db() const noexcept { return handle_.get(); }
  void migrate();
  void move_reports_to_files();  // part of migration 4
  void seal_audit_chain();       // part of migration 5
  void exec(const char* sql);
  // Caller holds mutex_. Throws std::runtime_error for an unknown id.
  std::int64_t seq_of(std::string_view id);
  // Caller holds mutex_. The seq of a done scan; nothing for an unknown id or
  // a scan that is not done.
  std::optional<std::int64_t> done_seq_of(std::string_view id);
  // Caller holds mutex_ and a transaction. Running scans found with `select`
  // (id, attempts, lease_node; its one parameter bound to `arg`): queued
  // again or failed, as store_rules::settle_running decides.
  template <typename Arg>
  void requeue_running(const char* select, Arg arg, store_rules::running_settlement& how);
  // Caller holds mutex_ (and usually a transaction).
  void audit(std::int64_t at, std::string_view event, std::string_view scan_id, const nlohmann::json& detail,
             const actor& by = {});

  std::mutex mutex_;
  std::filesystem::path reports_dir_;
  std::unique_ptr<sqlite3, closer> handle_;
};

}  // namespace borderscan::server
