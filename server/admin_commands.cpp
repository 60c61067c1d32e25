// borderscand's offline subcommands on the data dir: token create/list/revoke
// and audit verify. They open the same store the daemon uses (SQLite and
// PostgreSQL both allow that) and write audit entries as the local operator.
#include "admin_commands.hpp"

#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "borderscan/server/access.hpp"
#include "borderscan/server/store_factory.hpp"
#include "borderscan/server/system.hpp"
#include "hashset_command.hpp"

namespace borderscan::server {
namespace {

std::unique_ptr<report_store> open_store(const server_config& config) {
  std::filesystem::create_directories(config.storage.data_dir);
  return open_report_store(config.storage);
}

int token_create(const server_config& config, const std::string& role_name, const std::string& name) {
  const auto r = parse_role(role_name);
  if (!r) {
    std::cerr << "borderscand: --role must be station, reviewer or admin\n";
    return 2;
  }
  if (!is_valid_token_name(name)) {
    std::cerr << "borderscand: --name must be 1 to 64 characters of A-Z a-z 0-9 . _ - (and not 'system')\n";
    return 2;
  }
  auto store = open_store(config);
  const std::string token = generate_token();
  token_record t{name, *r, digest_of_token(token), system_clock().now_ms()};
  if (!store->add_token(t, local_operator())) {
    std::cerr << "borderscand: a token named '" << name << "' exists; revoke it first to replace it\n";
    return 1;
  }
  std::cout << "created " << role_name << " token '" << name << "'; it is shown only now, keep it safe:\n"
            << token << "\n";
  return 0;
}

int token_list(const server_config& config) {
  auto store = open_store(config);
  std::cout << "NAME\tROLE\tCREATED\n";
  for (const auto& t : store->list_tokens()) {
    std::cout << t.name << "\t" << to_string(t.role) << "\t" << format_time(t.created_at) << "\n";
  }
  return 0;
}

int token_revoke(const server_config& config, const std::string& name) {
  auto store = open_store(config);
  if (!store->revoke_token(name, local_operator(), system_clock().now_ms())) {
    std::cerr << "borderscand: no token named '" << name << "'\n";
    return 1;
  }
  std::cout << "revoked token '" << name << "'\n";
  return 0;
}

int audit_verify(const server_config& config) {
  if (!is_postgres_url(config.storage.database.string()) && !std::filesystem::exists(config.storage.database_path())) {
    std::cerr << "borderscand: no database at " << config.storage.database_path().string() << "\n";
    return 2;
  }
  auto store = open_store(config);
  const audit_check check = store->verify_audit();
  if (!check.intact()) {
    std::cout << "audit chain BROKEN at entry " << *check.first_bad_seq << ": " << check.problem << "\n";
    return 1;
  }
  std::cout << "audit chain intact: " << check.entries << " entries\n";
  return 0;
}

}  // namespace

actor local_operator() {
  const passwd* pw = ::getpwuid(::geteuid());
  return {std::string("local:") + (pw != nullptr ? pw->pw_name : std::to_string(::geteuid())), "cli", "", "local"};
}

void audit_locally(const server_config& config, std::string_view event, const nlohmann::json& detail) {
  auto store = open_store(config);
  store->record(event, "", detail, local_operator(), system_clock().now_ms());
}

admin_commands add_admin_commands(CLI::App& app) {
  admin_commands out;
  auto* token = app.add_subcommand("token", "manage API tokens on the data dir");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "make a token and print it once (last word of the last line)");
  auto role_name = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  create->add_option("--role", *role_name, "station, reviewer or admin")->required();
  create->add_option("--name", *name, "the token's name (a station's name for station tokens)")->required();
  auto* list = token->add_subcommand("list", "list tokens (names and roles; never the tokens)");
  auto* revoke = token->add_subcommand("revoke", "revoke a token by name");
  auto revoke_name = std::make_shared<std::string>();
  revoke->add_option("NAME", *revoke_name, "the token's name")->required();
  auto* audit = app.add_subcommand("audit", "check the audit trail");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand("verify", "exit 0 when the hash chain is intact, 1 naming the first bad entry");
  for (auto* sub : {token, create, list, revoke, audit, verify}) {
    sub->fallthrough();  // --config and --data-dir may follow the subcommand
  }
  const hashset_commands hashsets = add_hashset_commands(app);
  out.run = [=](const server_config& config) -> std::optional<int> {
    if (auto rc = hashsets.run(config)) {
      return rc;
    }
    if (create->parsed()) {
      return token_create(config, *role_name, *name);
    }
    if (list->parsed()) {
      return token_list(config);
    }
    if (revoke->parsed()) {
      return token_revoke(config, *revoke_name);
    }
    if (verify->parsed()) {
      return audit_verify(config);
    }
    return std::nullopt;
  };
  return out;
}

}  // namespace borderscan::server
