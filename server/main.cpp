// borderscand: the checkpoint daemon. Parses flags, loads the configuration,
// picks the implementations (SQLite or PostgreSQL store, in-process runner) and wires them.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "borderscan/evidence/report_signature.hpp"
#include "borderscan/sandbox/sandbox.hpp"
#include "borderscan/sandbox/work_folder.hpp"
#include "borderscan/scanner/error.hpp"
#include "borderscan/scanner/rule_set.hpp"
#include "borderscan/server/blocking_pool.hpp"
#include "borderscan/server/config.hpp"
#include "borderscan/server/http_server.hpp"
#include "borderscan/server/job_queue.hpp"
#include "borderscan/server/logging.hpp"
#include "borderscan/server/metrics.hpp"
#include "borderscan/server/router.hpp"
#include "borderscan/server/process_runner.hpp"
#include "borderscan/server/retention.hpp"
#include "borderscan/server/rules_service.hpp"
#include "borderscan/server/scan_runner.hpp"
#include "borderscan/server/store_factory.hpp"
#include "borderscan/server/system.hpp"
#include "borderscan/server/worker_pool.hpp"
#include "admin_commands.hpp"
#include "hashset_command.hpp"

namespace fs = std::filesystem;
using namespace borderscan;

namespace {

// Removes spool files no queued or running scan refers to: partial uploads
// of a process that died, and images whose scan ended while it was down.
// shared: other nodes use the same spool and store (PostgreSQL), so a file
// written in the last hour may be their upload or scan in progress: left.
void sweep_spool(const fs::path& spool, server::report_store& store, bool keep_images, bool shared) {
  const auto live = store.live_spool_paths();
  const auto recent = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& entry : fs::directory_iterator(spool)) {
    const auto& p = entry.path();
    std::error_code ec;
    if (shared && entry.last_write_time(ec) > recent && !ec) {
      continue;
    }
    // Partial uploads, and reports of scans that were running: they run again.
    const bool partial = p.extension() == ".part" || p.string().ends_with(".report.json");
    const bool orphan =
        p.extension() == ".img" && !keep_images && std::find(live.begin(), live.end(), p.string()) == live.end();
    if (partial || orphan) {
      fs::remove(p, ec);
      spdlog::info("spool: removed leftover {}", p.string());
    }
  }
}

void write_port_file(const fs::path& file, unsigned port) {
  // Written whole and renamed, so a reader never sees a partial number.
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
  }
  fs::rename(tmp, file);
}

// The data dir and its folders hold travellers' data: owner only, also when
// they were made by hand or by an older version with a wider mode.
void make_private_dirs(std::initializer_list<fs::path> dirs) {
  for (const auto& dir : dirs) {
    fs::create_directories(dir);
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) {
      spdlog::warn("cannot make {} owner-only (mode 0700): {}", dir.string(), ec.message());
    }
  }
}

// Plain HTTP beyond this machine sends tokens and reports in clear: refused
// unless the operator said so, and then said again on every start.
bool listen_allowed(const server::http_config& http) {
  if (http.tls_enabled() || server::is_loopback(http.listen)) {
    return true;
  }
  if (!http.allow_insecure_listen) {
    spdlog::critical(
        "refusing to listen on {} without TLS: tokens and reports would cross the network in clear. Set "
        "http.tls_certificate and http.tls_private_key, listen on 127.0.0.1, or set http.allow_insecure_listen = "
        "true when a TLS proxy or a private network protects the port",
        http.listen.host);
    return false;
  }
  spdlog::warn(
      "INSECURE: listening on {} with plain HTTP (http.allow_insecure_listen = true); tokens and reports "
      "cross the network in clear unless something else encrypts them",
      http.listen.host);
  return true;
}

int serve(const server::server_config& config, const fs::path& port_file, unsigned debug_scan_delay_ms,
          unsigned debug_store_delay_ms) {
  if (!listen_allowed(config.http)) {
    return 2;
  }
  scanner::yara_library yara;
  std::vector<std::string> rule_paths, hashsets;
  for (const auto& p : config.rules.paths) {
    rule_paths.push_back(p.string());
  }
  for (const auto& p : config.rules.known_bad) {
    hashsets.push_back(p.string() + ":known-bad");
  }
  for (const auto& p : config.rules.known_good) {
    hashsets.push_back(p.string() + ":known-good");
  }
  const scanner::rule_sources sources = scanner::rule_sources_for(rule_paths, hashsets);

  const fs::path spool = config.storage.spool_path();
  const fs::path evidence_dir = config.evidence.enabled ? config.evidence.root(config.storage.data_dir) : fs::path();
  make_private_dirs({config.storage.data_dir, spool, config.storage.reports_path(),
                     config.storage.compiled_rules_path(), config.evidence.root(config.storage.data_dir)});

  // Made at the first start; every stored report is signed with it.
  const auto signer = evidence::signing_key::load_or_create(config.storage.signing_key_path());
  spdlog::info("reports are signed with Ed25519 key {} ({})", signer.public_part().key_id(),
               config.storage.signing_key_path().string());
  server::system_clock clock;
  server::random_id_generator ids;
  const auto opened = server::open_report_store(config.storage);
  server::report_store& store = *opened;
  if (store.list_tokens().empty()) {
    spdlog::warn(
        "no API tokens yet: every route but /healthz and /readyz answers 401. Create one with "
        "`borderscand token create --role admin --name NAME --config FILE`");
  }
  server::retention_policy retention;
  retention.keep_all = config.storage.keep_images;
  retention.keep_flagged_ms = std::int64_t{config.storage.keep_flagged_days} * 86'400'000;
  retention.keep_failed_ms = std::int64_t{config.storage.keep_failed_hours} * 3'600'000;
  const server::node_lease lease{server::node_id_for(config.storage, ids),
                                 std::int64_t{config.jobs.lease_seconds} * 1000};
  spdlog::info("node {}: running scans are leased for {} s at a time", lease.node, config.jobs.lease_seconds);
  if (const auto n = store.recover_running(lease.node, config.jobs.max_attempts, clock.now_ms(),
                                           retention.keep_all ? 0 : retention.keep_failed_ms);
      n > 0) {
    spdlog::warn("recovered {} scan(s) this node left running; queued again", n);
  }
  sweep_spool(spool, store, config.storage.keep_images, server::is_postgres_url(config.storage.database.string()));
  if (const auto n = sandbox::remove_leftover_work_folders(server::work_root_for(spool)); n > 0) {
    spdlog::info("spool: removed {} leftover worker folder(s) in {}", n, server::work_root_for(spool).string());
  }

  // Compiled once here (and at each reload); every worker loads the saved
  // result and says which rule set it holds.
  server::rules_service rules(
      rule_paths,
      [&config, hashsets] {
        // The configured sets, then those imported into the data dir (`borderscand hashset import`).
        std::vector<std::string> all = hashsets;
        for (auto& imported : server::imported_hashsets(config.storage.data_dir)) {
          all.push_back(std::move(imported));
        }
        return all;
      },
      config.storage.compiled_rules_path(), store, clock, lease.node);
  rules.publish_at_start();
  server::rule_holder& rule_holder = rules.holder();
  {
    const auto loaded = rule_holder.snapshot();
    spdlog::info("rules: {} YARA rules, ruleset {}, compiled to {}", loaded.rules->info().yara_rules,
                 loaded.rules->info().digest, loaded.compiled.string());
  }
  server::metrics stats;
  server::job_queue queue(store, clock, config.jobs.queue_capacity, lease);
  // Scans start only with the rule set every node holds (another node may have reloaded).
  queue.set_claim_gate([&rules] { return rules.follow(); });
  std::optional<scanner::evidence_limits> evidence_limits;
  if (config.evidence.enabled) {
    evidence_limits = scanner::evidence_limits{config.evidence.max_file_bytes, config.evidence.max_bytes_per_scan};
  }
  server::in_process_runner in_process(config.limits, rule_holder, config.jobs.effective_scan_threads(),
                                       evidence_limits);
  server::process_runner_settings fenced;
  fenced.command = !config.worker.command.empty() ? config.worker.command
                                                  : fs::read_symlink("/proc/self/exe").parent_path() / "borderscan";
  fenced.rule_paths = sources.rule_paths;
  fenced.hashsets = hashsets;
  fenced.rules = &rule_holder;
  fenced.limits = config.limits;
  fenced.scan_threads = config.jobs.effective_scan_threads();
  fenced.worker = config.worker;
  fenced.evidence = evidence_limits;
  if (config.worker.isolation == "process" && !fs::exists(fenced.command)) {
    spdlog::critical("worker.command {} does not exist", fenced.command.string());
    return 2;
  }
  server::process_runner process(fenced);
  server::scan_runner& runner = config.worker.isolation == "process" ? static_cast<server::scan_runner&>(process)
                                                                     : static_cast<server::scan_runner&>(in_process);
  spdlog::info("scans run {}", config.worker.isolation == "process"
                                   ? "in fenced worker processes (" + fenced.command.string() + ")"
                                   : std::string("inside the daemon (worker.isolation = \"none\")"));
  if (config.worker.isolation == "process") {
    if (const int abi = sandbox::landlock_abi(); abi > 0) {
      spdlog::info("worker fence: Landlock ABI {} and an allowlist seccomp filter", abi);
    } else {
      spdlog::warn("worker fence: this kernel has no Landlock; workers run under the seccomp filter only");
    }
  }
  server::delayed_runner delayed(runner, std::chrono::milliseconds(debug_scan_delay_ms));
  server::scan_runner& chosen = debug_scan_delay_ms > 0 ? static_cast<server::scan_runner&>(delayed) : runner;
  server::report_ingest ingest(store, {.reports_dir = config.storage.reports_path(),
                                       .max_report_bytes = config.worker.max_output_bytes,
                                       .signer = &signer,
                                       .evidence_dir = evidence_dir});
  server::store_health store_health;
  server::worker_pool pool(
      queue, chosen, store, ingest, stats, clock,
      {.workers = config.jobs.effective_workers(),
       .max_attempts = config.jobs.max_attempts,
       .retention = retention,
       .evidence_keep_ms = std::int64_t{config.evidence.keep_days} * 86'400'000,
       .store_attempts = config.jobs.store_attempts,
       .store_retry_first_delay = std::chrono::milliseconds(config.jobs.store_retry_first_delay_ms),
       .health = &store_health,
       .debug_store_hold = std::chrono::milliseconds(debug_store_delay_ms)});
  server::retention_sweeper sweeper(store, clock, std::chrono::seconds(config.storage.retention_sweep_seconds));
  std::shared_ptr<const server::web_files> console;
  if (config.http.console) {
    const fs::path web_dir = server::default_web_dir(config.http.web_dir);
    console = std::make_shared<const server::web_files>(server::web_files::load(web_dir));
    if (console->empty()) {
      spdlog::warn("the review console's files are not in {}: / answers 404", web_dir.string());
    } else {
      spdlog::info("review console: {} files from {}", console->size(), web_dir.string());
    }
  }
  server::router routes(store, queue, stats, rule_holder, clock, ids,
                        {.spool_dir = spool,
                         .max_image_bytes = config.storage.max_image_bytes,
                         .min_free_spool_bytes = config.storage.min_free_spool_bytes,
                         .public_metrics = config.http.public_metrics,
                         .signing_key_pem = signer.public_part().pem(),
                         .evidence_dir = evidence_dir,
                         .reload_rules = [&rules](const server::actor& by) { return rules.reload(by); },
                         .cluster_rules = [&rules] { return rules.standing(); },
                         .web = console,
                         .health = &store_health,
                         .data_dir = config.storage.data_dir});
  // Handlers that wait for the disk or the store (fdatasync of an upload,
  // SQLite) run here instead of on the I/O threads. Two threads match the
  // I/O threads; 64 waiting requests is far more than SQLite clears in a
  // moment, and past it a request is answered 503 at once.
  server::blocking_pool blocking(2, 64);
  server::http_server server(routes, stats, blocking, config.http, config.log);

  pool.start();
  sweeper.start();
  const auto endpoint = server.start(config.http.listen.host, config.http.listen.port);
  spdlog::info("borderscand {} listening on {}://{}:{} (workers {}, queue {} queued of {}, data {})",
               BORDERSCAN_VERSION, config.http.tls_enabled() ? "https" : "http", endpoint.address().to_string(),
               endpoint.port(), config.jobs.effective_workers(), queue.queued(), config.jobs.queue_capacity,
               config.storage.data_dir.string());
  if (!port_file.empty()) {
    write_port_file(port_file, endpoint.port());
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  int sig = 0;
  // SIGHUP reloads the rules (as POST /api/v1/rules/reload does); the others stop.
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info("SIGHUP: reloading the rules");
    rules.reload(server::actor{"signal", "system", "", "SIGHUP"});
  }
  spdlog::info("{}: draining (up to {} s for running scans)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               config.jobs.shutdown_grace_seconds);
  server.stop_accepting();
  pool.drain(std::chrono::seconds(config.jobs.shutdown_grace_seconds));
  server.stop();
  sweeper.stop();
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts, so every thread inherits
  // the mask and only main's sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // The database, its WAL, reports, spooled images and keys hold travellers'
  // data: whatever this process creates is its owner's only.
  ::umask(077);

  CLI::App app{"borderscand: the Borderscan checkpoint daemon (REST API, job queue, report store)"};
  app.set_version_flag("--version", BORDERSCAN_VERSION);
  auto* serve_cmd = app.add_subcommand("serve", "run the daemon (the default)");
  serve_cmd->fallthrough();
  app.require_subcommand(0, 1);
  std::string config_file, listen, data_dir, database, port_file, node_id;
  bool print_config = false;
  unsigned debug_scan_delay_ms = 0;
  unsigned debug_store_delay_ms = 0;
  app.add_option("--config", config_file, "configuration file (TOML); default: built-in defaults")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "HOST:PORT to listen on (overrides http.listen); port 0 = ephemeral");
  app.add_option("--data-dir", data_dir, "directory of the database and spool (overrides storage.data_dir)");
  app.add_option("--database", database, "SQLite file or postgresql:// URL of the store (overrides storage.database)");
  app.add_option("--node-id", node_id, "this node's name in scan leases (overrides storage.node_id)");
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  app.add_flag("--print-config", print_config, "print the effective configuration as TOML and exit");
  bool allow_insecure_listen = false;
  app.add_flag("--allow-insecure-listen", allow_insecure_listen,
               "listen with plain HTTP beyond loopback (sets http.allow_insecure_listen; warned at every start)");
  // Hidden test seam: every scan stays `running` this long before it starts.
  app.add_option("--debug-scan-delay-ms", debug_scan_delay_ms)->group("");
  // Hidden test seam: every report, once written to the store, waits this long before its scan is recorded done.
  app.add_option("--debug-store-delay-ms", debug_store_delay_ms)->group("");
  const server::admin_commands admin = server::add_admin_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  server::server_config config;
  try {
    if (!config_file.empty()) {
      config = server::load_config(config_file);
    }
    if (!listen.empty()) {
      config.http.listen = server::parse_listen_address(listen);
    }
    if (!data_dir.empty()) {
      config.storage.data_dir = data_dir;
    }
    if (!database.empty()) {
      config.storage.database = database;
    }
    if (!node_id.empty()) {
      config.storage.node_id = node_id;
    }
    config.http.allow_insecure_listen = config.http.allow_insecure_listen || allow_insecure_listen;
  } catch (const server::config_error& e) {
    std::cerr << "borderscand: configuration error: " << e.what() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << server::to_toml(config);
    return 0;
  }
  try {
    if (const auto rc = admin.run(config)) {
      return *rc;
    }
  } catch (const std::exception& e) {
    std::cerr << "borderscand: " << e.what() << "\n";
    return 1;
  }

  server::configure_logging(config.log);
  try {
    return serve(config, port_file, debug_scan_delay_ms, debug_store_delay_ms);
  } catch (const scanner::scan_error& e) {
    spdlog::critical("cannot start: rules: {}", e.what());
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
  }
  return 2;
}
