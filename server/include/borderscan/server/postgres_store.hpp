#pragma once
// The report_store of larger deployments: PostgreSQL 15 through libpq, so
// that several borderscand nodes can share one store, queue and audit chain.
// Same semantics as sqlite_report_store (the same tests run against both).
// A small pool of connections: the HTTP threads and the workers call the
// store at once, and each call holds one connection only while it runs.
// Audited writes take one advisory lock first, so the audit chain stays a
// single chain whatever the number of writers (and nodes).

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "borderscan/server/report_store.hpp"

struct pg_conn;

namespace borderscan::server {

class postgres_report_store final : public report_store {
 public:
  // url: a libpq connection URI (postgresql://...). Connects and migrates;
  // throws std::runtime_error naming the server's message when that fails.
  // The URL is never part of a message: it may hold a password.
  explicit postgres_report_store(std::string url, unsigned max_connections = 8);
  ~postgres_report_store() override;
  postgres_report_store(const postgres_report_store&) = delete;
  postgres_report_store& operator=(const postgres_report_store&) = delete;

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

  // One pooled connection, given back when destroyed.
  class connection {
   public:
    connection(postgres_report_store& store, pg_conn* c) : store_(&store), conn_(c) {}
    ~connection();
    connection(connection&& other) noexcept : store_(other.store_), conn_(other.conn_) { other.conn_ = nullptr; }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    connection& operator=(connection&&) = delete;
    pg_conn* get() const noexcept { return conn_; }

   private:
    postgres_report_store* store_;
    pg_conn* conn_;
  };

 private:
  connection acquire();
  void release(pg_conn* c) noexcept;
  void migrate();

  std::string url_;
  unsigned max_connections_;
  std::mutex mutex_;
  std::condition_variable idle_changed_;
  std::vector<pg_conn*> idle_;
  unsigned open_ = 0;
};

}  // namespace borderscan::server
