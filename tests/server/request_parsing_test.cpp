// How the session takes requests off a plain connection (issue 18: a request already in the
// buffer is parsed at once, Beast's async reads only wait for bytes still to come): pipelined
// requests, a header or a body cut across sends, and the limits, against the real mallornd.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/raw_conn.hpp"

using namespace mallorn;
using namespace mallorn::test;
using namespace std::chrono_literals;

namespace {

// The status codes of the responses in `stream`, in order.
std::vector<int> statuses(const std::string& stream) {
  std::vector<int> out;
  for (auto at = stream.find("HTTP/1.1 "); at != std::string::npos; at = stream.find("HTTP/1.1 ", at + 1))
    out.push_back(std::atoi(stream.c_str() + at + 9));
  return out;
}

}  // namespace

TEST(RequestParsing, PipelinedSplitAndOversizedRequests) {
  daemon_store_rig rig("request-parsing", "parsing-admin-token-0123456789", {"tfm-hello-world-int8"});
  daemon_process d(rig.dir.path(), rig.args({"--header-limit", "4096"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string body = nlohmann::json{{"sha256", core::to_hex(*core::sha256_of_file(rig.pairs[0].v1))}}.dump();
  const std::string check = "POST /check-update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

  // Three requests in one send: three answers, in order, on the one connection.
  raw_conn piped(d.port());
  ASSERT_TRUE(piped.send(healthz + check + "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n" + healthz));
  bool closed = false;
  const auto answers = statuses(piped.read_all(1500ms, closed));
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0], 200);
  EXPECT_TRUE(answers[1] == 200 || answers[1] == 202) << answers[1];
  EXPECT_EQ(answers[2], 404);
  EXPECT_EQ(answers[3], 200);
  EXPECT_FALSE(closed);

  // A header cut in the middle, and a body sent after its header: each waits for the rest.
  raw_conn cut(d.port());
  ASSERT_TRUE(cut.send(healthz.substr(0, 10)));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(cut.request(healthz.substr(10)), 200);
  const auto head_end = check.find("\r\n\r\n") + 4;
  ASSERT_TRUE(cut.send(check.substr(0, head_end + 5)));
  std::this_thread::sleep_for(200ms);
  std::string answer;
  const int status = cut.request(check.substr(head_end + 5), &answer);
  EXPECT_TRUE(status == 200 || status == 202) << status << " " << answer;

  // Limits found in what is buffered already: 431 behind a good request, 400 for garbage.
  raw_conn big(d.port());
  ASSERT_TRUE(big.send(healthz + "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8192, 'a') + "\r\n\r\n"));
  const auto limited = statuses(big.read_all(3000ms, closed));
  EXPECT_EQ(limited, (std::vector<int>{200, 431}));
  EXPECT_TRUE(closed);
  raw_conn garbage(d.port());
  ASSERT_TRUE(garbage.send("GET / HTTP/1.1 extra\r\n\r\n"));
  EXPECT_EQ(statuses(garbage.read_all(3000ms, closed)), (std::vector<int>{400}));
  EXPECT_TRUE(closed);
}
