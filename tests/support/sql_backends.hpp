// The two index back-ends a storage test runs against, for typed test suites: a SQLite file in a
// temp dir and a database on the private PostgreSQL server (postgres_server.hpp).
//   using backends = ::testing::Types<sqlite_backend, postgres_backend>;
//   TYPED_TEST_SUITE(MySuite, backends, backend_names);
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "support/postgres_server.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {

struct sqlite_backend {
  static constexpr const char* name = "sqlite";
  temp_dir dir{"storage"};
  std::string url() { return "sqlite:" + (dir / "index.sqlite").string(); }
  static bool available(std::string&) { return true; }
};

struct postgres_backend {
  static constexpr const char* name = "postgres";
  temp_dir dir{"storage"};
  std::string db_url;
  std::string url() {
    auto& pg = postgres_server::shared();
    if (db_url.empty() && pg.ok()) db_url = pg.create_database();
    return db_url;
  }
  static bool available(std::string& why) {
    auto& pg = postgres_server::shared();
    if (!pg.ok()) why = pg.error();
    return pg.ok();
  }
};

struct backend_names {
  template <typename T>
  static std::string GetName(int) {
    return T::name;
  }
};

using sql_backends = ::testing::Types<sqlite_backend, postgres_backend>;

}  // namespace mallorn::test
