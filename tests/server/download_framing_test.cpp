// A download's header is formatted by the session itself and leaves ahead of sendfile
// (detail::file_response_head, send_head: issue 18): the framing a client sees must stay what
// Beast wrote, over HTTP/1.1 and 1.0, kept alive or closed, whole or a range, read fast or slowly.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <thread>

#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/raw_conn.hpp"

using namespace mallorn;
using namespace mallorn::test;
using namespace std::chrono_literals;

namespace {

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// mallornd serving one pair, and the bytes of its version 2.
struct served_model {
  daemon_store_rig rig{"download-framing", "framing-admin-token-0123456789", {"coral-mnv2-quant_2020-to-2021a"}};
  daemon_process d{rig.dir.path(), rig.args()};
  std::string data = file_bytes(rig.pairs[0].v2);
  std::string target = "/model/" + rig.pairs[0].model + "/2";
};

bool has_line(const std::string& headers, const std::string& line) {
  return ("\r\n" + headers + "\r\n").find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST(DownloadFraming, HeadersAndBodiesOverHttp10And11) {
  served_model m;
  auto& d = m.d;
  const auto& data = m.data;
  const auto& target = m.target;
  ASSERT_TRUE(d.listening()) << d.log();
  const std::string length_line = "Content-Length: " + std::to_string(data.size());

  // HTTP/1.1 kept alive: no Connection field, the whole file, then the next request is served.
  raw_conn kept(d.port());
  std::string body, headers;
  ASSERT_EQ(kept.request("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n", &body, &headers), 200);
  EXPECT_TRUE(body == data) << body.size() << " of " << data.size() << " bytes";
  EXPECT_TRUE(has_line(headers, length_line)) << headers;
  EXPECT_TRUE(has_line(headers, "Server: mallornd")) << headers;
  EXPECT_TRUE(has_line(headers, "Accept-Ranges: bytes")) << headers;
  EXPECT_EQ(headers.find("Connection:"), std::string::npos) << headers;
  ASSERT_EQ(kept.request("GET " + target + " HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1999\r\n\r\n", &body, &headers), 206);
  EXPECT_TRUE(body == data.substr(1000, 1000));
  EXPECT_TRUE(has_line(headers, "Content-Length: 1000")) << headers;
  EXPECT_TRUE(has_line(headers, "Content-Range: bytes 1000-1999/" + std::to_string(data.size()))) << headers;

  // HTTP/1.1 Connection: close, and HTTP/1.0: the whole file, then the server closes.
  for (const std::string request : {"GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                    "GET " + target + " HTTP/1.0\r\n\r\n"}) {
    raw_conn once(d.port());
    ASSERT_EQ(once.request(request, &body, &headers), 200) << request;
    EXPECT_TRUE(body == data);
    EXPECT_TRUE(has_line(headers, length_line)) << headers;
    const bool v11 = request.find("HTTP/1.1") != std::string::npos;
    EXPECT_EQ(headers.rfind(v11 ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n", 0), 0u) << headers;
    EXPECT_EQ(has_line(headers, "Connection: close"), v11) << headers;
    EXPECT_EQ(headers.find("keep-alive"), std::string::npos) << headers;
    EXPECT_TRUE(once.closed_within(3000ms)) << request;
  }

  // HTTP/1.0 asking for keep-alive gets it, and the connection serves another request.
  raw_conn old_kept(d.port());
  ASSERT_EQ(old_kept.request("GET " + target + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &body, &headers), 200);
  EXPECT_TRUE(body == data);
  EXPECT_TRUE(has_line(headers, "Connection: keep-alive")) << headers;
  EXPECT_EQ(headers.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << headers;
  EXPECT_EQ(old_kept.request("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 200);
}

// A client that reads slowly through a small receive buffer: the server's socket fills, the
// header and body wait for writability (bounded by the write timeout), and every byte arrives.
TEST(DownloadFraming, SlowReaderGetsEveryByte) {
  served_model m;
  auto& d = m.d;
  const auto& data = m.data;
  ASSERT_TRUE(d.listening()) << d.log();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(d.port()));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 0);
  const std::string request = "GET " + m.target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string in;
  char buf[8192];
  const auto end = std::chrono::steady_clock::now() + 60s;
  for (ssize_t n; std::chrono::steady_clock::now() < end && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
    in.append(buf, static_cast<std::size_t>(n));
    if (in.size() < 512 * 1024) std::this_thread::sleep_for(1ms);  // slow for the first half MiB
  }
  ::close(fd);
  const auto head_end = in.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_EQ(in.compare(0, 17, "HTTP/1.1 200 OK\r\n"), 0) << in.substr(0, head_end);
  EXPECT_TRUE(in.substr(head_end + 4) == data) << in.size() - head_end - 4 << " of " << data.size() << " bytes";
  EXPECT_TRUE(d.running()) << d.log();
}
