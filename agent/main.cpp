// mallorn-agent: keeps the models on a Linux device up to date from a mallornd server.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "mallorn/agent/agent_config.hpp"
#include "mallorn/agent/device_credentials.hpp"
#include "mallorn/agent/http_client.hpp"
#include "mallorn/agent/updater.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/logging.hpp"

#ifdef MALLORN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int, const char*) { return 0; }
#endif

using namespace mallorn;

namespace {

const char* usage =
    "usage: mallorn-agent --config FILE [run | check-once | status | install MODEL FILE] [--json]\n"
    "                     [--log-level trace|debug|info|warn|error]\n"
    "  run          (default) check every poll_interval (with jitter), update, report; SIGTERM stops\n"
    "  check-once   resume an interrupted update or check once, then exit: 0 up to date or updated,\n"
    "               1 failed or rolled back, 3 the server is still preparing the update\n"
    "  status       each model's active slot, version, SHA-256 and update state\n"
    "  install      provision MODEL's slot a with FILE (first installation)\n"
    "See docs/agent.md for the configuration file, the slot layout and the state machine.\n";

std::atomic<bool> stop{false};

int status_command(const agent::agent_config& cfg, bool as_json) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : cfg.models) {
    agent::slot_store slots(m.dir, m.file);
    auto j = agent::load_journal(m.dir / "journal.json");
    auto active = slots.active();
    std::string sha;
    if (active)
      if (auto d = core::sha256_of_file(slots.model_path(*active))) sha = core::to_hex(*d);
    out.push_back({{"model", m.name},
                   {"active_slot", active ? *active : ""},
                   {"sha256", sha},
                   {"installed_version", j ? j->installed_version : ""},
                   {"state", j ? agent::state_name(j->state) : "unreadable"},
                   {"update", j && j->state != agent::update_state::idle ? j->from_version + " -> " + j->to_version : ""},
                   {"last_error", j ? j->error : ""},
                   {"bad_server_answers", j ? j->bad_server_answers : 0}});
  }
  if (as_json) {
    std::cout << out.dump() << "\n";
  } else {
    for (const auto& m : out)
      std::cout << m["model"].get<std::string>() << ": slot " << m["active_slot"].get<std::string>() << ", version "
                << m["installed_version"].get<std::string>() << ", sha256 " << m["sha256"].get<std::string>()
                << ", state " << m["state"].get<std::string>() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);  // a server that vanishes mid-transfer is an error to handle, not a kill
  std::string config_path, command = "run";
  std::vector<std::string> rest;
  bool as_json = false;
  std::string log_level = "info";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      return 0;
    } else if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--log-level" && i + 1 < argc) {
      log_level = argv[++i];
    } else if (a == "--json") {
      as_json = true;
    } else if (a.rfind("--", 0) == 0) {
      std::cerr << "mallorn-agent: unknown option " << a << "\n" << usage;
      return 2;
    } else {
      rest.push_back(a);
    }
  }
  if (!rest.empty()) {
    command = rest[0];
    rest.erase(rest.begin());
  }
  if (config_path.empty()) {
    std::cerr << "mallorn-agent: --config FILE is required\n" << usage;
    return 2;
  }
  if (!core::setup_logging("mallorn-agent", log_level)) spdlog::warn("unknown --log-level '{}', using info", log_level);
  auto cfg = agent::load_agent_config(config_path);
  if (!cfg) {
    std::cerr << "mallorn-agent: " << cfg.err().message << "\n";
    return 2;
  }
  if (command == "status") return status_command(*cfg, as_json);
  if (command == "install") {
    if (rest.size() != 2) {
      std::cerr << usage;
      return 2;
    }
    for (const auto& m : cfg->models)
      if (m.name == rest[0]) {
        auto r = agent::slot_store(m.dir, m.file).install(rest[1]);
        if (!r) {
          std::cerr << "mallorn-agent: " << r.err().what() << "\n";
          return 1;
        }
        return 0;
      }
    std::cerr << "mallorn-agent: no model '" << rest[0] << "' in " << config_path << "\n";
    return 2;
  }
  auto client = agent::http_client::create(cfg->server, cfg->tls, cfg->http_timeout);
  if (!client) {
    std::cerr << "mallorn-agent: " << client.err().message << "\n";
    return 2;
  }
  std::shared_ptr<agent::device_credentials> credentials;
  if (!cfg->device_key.empty()) {
    auto key = agent::load_or_create_device_key(cfg->device_key);
    if (!key) {
      std::cerr << "mallorn-agent: device key: " << key.err().message << "\n";
      return 2;
    }
    credentials = std::make_shared<agent::device_credentials>(cfg->device_id, *key, cfg->tags);
    client->use_credentials(credentials);
  }
  std::vector<agent::updater> updaters;
  for (const auto& m : cfg->models) updaters.emplace_back(*cfg, m, *client);

  if (command == "check-once") {
    if (credentials && !credentials->token(*client)) {
      std::cerr << "mallorn-agent: no device token: " << credentials->last_problem() << "\n";
      return credentials->status() == agent::enrollment_status::pending ? 3 : 1;
    }
    int code = 0;
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < updaters.size(); ++i) {
      auto r = updaters[i].run_once();
      out.push_back({{"model", cfg->models[i].name},
                     {"outcome", agent::outcome_name(r.outcome)},
                     {"detail", r.detail},
                     {"retry_after", r.retry_after}});
      if (r.outcome == agent::cycle_outcome::failed || r.outcome == agent::cycle_outcome::rolled_back) code = 1;
      else if (r.outcome == agent::cycle_outcome::pending && code == 0) code = 3;
    }
    if (as_json) std::cout << out.dump() << "\n";
    return code;
  }
  if (command != "run") {
    std::cerr << "mallorn-agent: unknown command " << command << "\n" << usage;
    return 2;
  }
  signal(SIGTERM, [](int) { stop = true; });
  signal(SIGINT, [](int) { stop = true; });
  sd_notify(0, "READY=1");
  std::mt19937 rng(std::random_device{}());
  std::vector<double> backoff(updaters.size(), 1.0);
  double identity_backoff = 2;
  while (!stop) {
    double wait = cfg->poll_interval.count();
    // Device identity: no update work until the server has admitted this device.
    if (credentials && !credentials->token(*client)) {
      identity_backoff = std::min<double>(identity_backoff * 2, std::max<double>(4, cfg->poll_interval.count()));
      spdlog::warn("no device token ({}); asking again in {:.0f} s", credentials->last_problem(), identity_backoff);
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(identity_backoff);
      while (!stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    identity_backoff = 2;
    for (std::size_t i = 0; i < updaters.size() && !stop; ++i) {
      auto r = updaters[i].run_once();
      if (r.outcome == agent::cycle_outcome::pending) {
        wait = std::min<double>(wait, std::max(1u, r.retry_after));
      } else if (r.outcome == agent::cycle_outcome::failed) {
        backoff[i] = std::min(backoff[i] * 2, 64.0);  // exponential, capped
        wait = std::min(wait, std::min<double>(cfg->poll_interval.count(), 5 * backoff[i]));
      } else {
        backoff[i] = 1.0;
      }
    }
    std::uniform_real_distribution<double> jitter(1 - cfg->jitter, 1 + cfg->jitter);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait * jitter(rng));
    while (!stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  sd_notify(0, "STOPPING=1");
  return 0;
}
