// A private PostgreSQL server for tests: initdb in a temp dir, pg_ctl start listening on a unix
// socket only (no TCP port to collide with), stopped and deleted at the end.
//
//   auto& pg = mallorn::test::postgres_server::shared();   // one per test process, started lazily
//   ASSERT_TRUE(pg.ok()) << pg.error();
//   std::string url = pg.create_database();                // a fresh, empty database per test
//   ... storage::open_database(url, data_dir) / mallornd --database <url> ...
//   pg.stop(); pg.start();                                 // simulate a database restart
//
// PostgreSQL refuses to run as root; when the tests run as root (CI), the server runs as `nobody`
// through runuser and its directory is handed to that user. Clients connect as the superuser
// "mallorn" with trust authentication over the socket.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

class postgres_server {
 public:
  postgres_server() : dir_("pg") {
    bin_ = find_bindir();
    if (bin_.empty()) {
      error_ = "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (scripts/deps.sh installs postgresql)";
      return;
    }
    as_ = ::getuid() == 0 ? "runuser -u nobody -- " : "";
    data_ = dir_ / "data";
    socket_ = dir_.path();
    if (::getuid() == 0) run_shell("chown nobody " + quote(dir_.path().string()));
    auto init = run_shell(as_ + quote(bin_ + "/initdb") + " -D " + quote(data_.string()) +
                          " -U mallorn -A trust --no-sync -E UTF8 --locale=C > " + quote((dir_ / "initdb.log").string()) +
                          " 2>&1; echo $?");
    if (init.out.substr(0, init.out.find('\n')) != "0") {
      error_ = "initdb failed: " + run_shell("tail -5 " + quote((dir_ / "initdb.log").string())).out;
      return;
    }
    start();
  }
  ~postgres_server() {
    if (running_) stop();
    // The data directory belongs to `nobody`; root removes it with the temp dir.
  }
  postgres_server(const postgres_server&) = delete;
  postgres_server& operator=(const postgres_server&) = delete;

  // One server per test process (started on first use, stopped at exit).
  static postgres_server& shared() {
    static postgres_server server;
    return server;
  }

  bool ok() const { return error_.empty() && running_; }
  const std::string& error() const { return error_; }
  const std::filesystem::path& socket_dir() const { return socket_; }
  int port() const { return 5432; }

  // URL of an existing database on this server.
  std::string url(const std::string& db = "postgres") const {
    return "postgresql://mallorn@/" + db + "?host=" + socket_.string() + "&port=" + std::to_string(port());
  }
  // URL of `db` with a password (trust authentication accepts any; for tests that check it is never shown).
  std::string url_with_password(const std::string& db, const std::string& password) const {
    return "postgresql://mallorn:" + password + "@/" + db + "?host=" + socket_.string() + "&port=" + std::to_string(port());
  }
  // Creates a fresh empty database and returns its URL ("" and error() set on failure); its name
  // goes to *name_out when given (for psql()).
  std::string create_database(std::string* name_out = nullptr) {
    static std::atomic<int> counter{0};
    const std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    if (name_out) *name_out = name;
    auto r = psql("postgres", "CREATE DATABASE " + name);
    if (r.exit_code != 0) {
      error_ = "CREATE DATABASE failed: " + r.out;
      return {};
    }
    return url(name);
  }
  // Runs SQL through psql (tab-separated, unaligned output).
  shell_result psql(const std::string& db, const std::string& sql) const {
    return run_shell("psql -X -q -A -t -v ON_ERROR_STOP=1 -h " + quote(socket_.string()) + " -p " +
                     std::to_string(port()) + " -U mallorn -d " + db + " -c " + quote(sql) + " 2>&1");
  }

  // Fast shutdown (open connections are terminated), as in a database restart.
  void stop() {
    run_shell(as_ + quote(bin_ + "/pg_ctl") + " -D " + quote(data_.string()) + " -m fast -w stop > /dev/null 2>&1");
    running_ = false;
  }
  void start() {
    const std::string opts = "-k " + socket_.string() + " -p " + std::to_string(port()) +
                             " -c listen_addresses='' -c fsync=off -c max_connections=200";
    auto r = run_shell(as_ + quote(bin_ + "/pg_ctl") + " -D " + quote(data_.string()) + " -l " +
                       quote((dir_ / "server.log").string()) + " -o " + quote(opts) + " -w -t 60 start > /dev/null 2>&1; echo $?");
    running_ = r.out.substr(0, r.out.find('\n')) == "0";
    if (!running_) error_ = "pg_ctl start failed: " + run_shell("tail -5 " + quote((dir_ / "server.log").string())).out;
  }

 private:
  static std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  static std::string find_bindir() {
    std::string best;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      auto bin = e.path() / "bin";
      if (std::filesystem::exists(bin / "initdb") && std::filesystem::exists(bin / "pg_ctl")) {
        // Highest major version wins ("15" > "13"; compared as numbers).
        if (best.empty() || std::stoi(e.path().filename().string()) >
                                std::stoi(std::filesystem::path(best).parent_path().filename().string()))
          best = bin.string();
      }
    }
    return best;
  }

  temp_dir dir_;
  std::string bin_, as_, error_;
  std::filesystem::path data_, socket_;
  bool running_ = false;
};

}  // namespace mallorn::test
