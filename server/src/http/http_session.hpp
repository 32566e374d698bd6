// One HTTP/1.1 connection: a coroutine over any Beast stream (plain TCP, TLS, or a test stream).
// Every read and write has a deadline: a new connection's first byte and every request header
// within the header timeout (short: an idle stranger holds a slot only briefly), the next
// request on a kept-alive connection within the idle timeout, each body chunk within the read
// timeout, each response chunk within the write timeout (a slow download is fine, a stalled one
// is not). A framing error (bad header, unknown or repeated transfer-coding, CL+TE, bad chunk)
// gets one 400/501 answer and the connection is closed: nothing after it is parsed.
#pragma once
#include <fcntl.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <array>
#include <atomic>
#include <limits>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <random>
#include <spdlog/spdlog.h>

#include "direct_send.hpp"
#include "file_slice_body.hpp"
#include "mallorn/core/log_safe.hpp"
#include "mallorn/server/http_framing.hpp"
#include "mallorn/server/http_server.hpp"
#include "mallorn/server/router.hpp"

namespace mallorn::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct session_context {
  const http_options& opts;
  router& routes;
  metrics& stats;
  patch_cache& cache;
  asio::thread_pool& blocking_pool;
  std::atomic<bool>& draining;
  asio::thread_pool& write_pool;           // one thread: device writes (plan().device_write)
  std::atomic<std::size_t>& writes_queued;  // bounded by opts.max_queued_writes
  std::atomic<std::size_t>& lookups_queued;  // index lookups on the blocking pool: opts.max_queued_lookups
};

// What the listener needs to see of a connection to shed the oldest idle one.
struct connection_state {
  std::atomic<bool> idle{true};                // waiting for a request's first byte
  std::atomic<std::int64_t> idle_since_ns{0};  // steady clock
  std::string key;                             // address_key() of the peer (rate limits)
  std::vector<std::string> peer_device_ids;    // mTLS: ids in the verified client certificate
  void set_idle(bool now_idle) {
    if (now_idle) idle_since_ns = std::chrono::steady_clock::now().time_since_epoch().count();
    idle = now_idle;
  }
};

namespace detail {

// Errors of Beast's HTTP parser that mean "the bytes are not HTTP" (as opposed to the peer going
// away or a timeout): they are answered 400 before the connection is closed.
inline bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::need_more &&
         ec != http::error::need_buffer;
}

inline void copy_headers(const http_response& r, http::fields& f) {
  for (const auto& [k, v] : r.headers) f.insert(k, v);
  f.set(http::field::server, "mallornd");
}

// A file response's header as Beast would write it (copy_headers(), then the Connection field
// keep_alive asks for and Content-Length), in one string: sent with send_head() ahead of sendfile.
inline std::string file_response_head(const http_response& r, std::uint64_t length, unsigned version, bool keep_alive) {
  std::string out = version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out.reserve(512);
  const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
  out.append(std::to_string(r.status)).append(" ").append(reason.data(), reason.size()).append("\r\n");
  for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
  out.append("Server: mallornd\r\n");
  if (version == 11 && !keep_alive) out.append("Connection: close\r\n");
  if (version == 10 && keep_alive) out.append("Connection: keep-alive\r\n");
  return out.append("Content-Length: ").append(std::to_string(length)).append("\r\n\r\n");
}

inline std::string staging_name(const std::filesystem::path& dir) {
  static std::atomic<std::uint64_t> counter{0};
  std::random_device rd;
  return (dir / ("upload-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
                 std::to_string(rd())))
      .string();
}

// Parses what `buffer` holds already into `parser`: its header (whole = false) or the whole
// message. True when that settled it, done or failed (`ec`: the error Beast's async read would
// have given); false when more bytes are needed (Beast's async read goes on with the same parser
// state). A request that arrived whole costs no async read, whose completion Beast must post (a
// scheduler round trip and a resumption per read: issue 18).
template <class Parser>
bool parse_buffered(Parser& parser, beast::flat_buffer& buffer, bool whole, beast::error_code& ec) {
  parser.eager(whole);  // as http::async_read / async_read_header set it
  const auto done = [&] { return whole ? parser.is_done() : parser.is_header_done(); };
  while (!done() && buffer.size() > 0) {
    buffer.consume(parser.put(buffer.data(), ec));
    if (ec == http::error::need_more) {
      ec = {};
      return false;
    }
    if (ec) return true;
  }
  return done();
}

// Removes a staged upload unless the router moved it into the store.
struct staged_file {
  std::string path;
  ~staged_file() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace detail

// TLS streams (tls_socket_stream) expose the SSL object and the socket under it.
template <class Stream>
concept has_tls_socket = requires(Stream& s) {
  { s.native_handle() } -> std::convertible_to<SSL*>;
  beast::get_lowest_layer(s).socket().native_handle();
};

// Plain TCP streams expose their socket, so the kernel can copy file bytes straight to it. A TLS
// stream has a socket too: its bytes must never be sent around OpenSSL.
template <class Stream>
concept has_plain_socket = requires(Stream& s) { s.socket().native_handle(); } && !has_tls_socket<Stream>;

template <class Stream>
asio::awaitable<void> write_response(Stream& stream, session_context& ctx, http_response& resp, unsigned version,
                                     bool keep_alive) {
  auto& tcp = beast::get_lowest_layer(stream);
  if (resp.prepared) {
    if (version == 11) {  // the bytes serialized once (prepare_response)
      const std::string& bytes = keep_alive ? resp.prepared->keep_alive : resp.prepared->close;
      tcp.expires_after(ctx.opts.write_timeout);
      co_await asio::async_write(stream, asio::buffer(bytes), asio::use_awaitable);
      co_return;
    }
    auto prepared = std::move(resp.prepared);  // HTTP/1.0: formatted for this request
    resp = prepared->answer;
  }
  if (resp.file) {
    std::uint64_t sent = 0;
    std::exception_ptr failure;
    tcp.expires_after(ctx.opts.write_timeout);
    try {
      if constexpr (has_plain_socket<Stream>) {
        // The header in one send, then sendfile: no serializer, no cork (send_head()).
        const std::string head = detail::file_response_head(resp, resp.file->length, version, keep_alive);
        co_await send_head(stream.socket(), head, resp.file->length > 0, ctx.opts.write_timeout);
        co_await sendfile_range(stream.socket(), resp.file->file->fd, resp.file->offset, resp.file->length,
                                ctx.opts.write_timeout, sent);
      } else {
        http::response<file_slice_body> res{static_cast<http::status>(resp.status), version};
        detail::copy_headers(resp, res);
        res.body().slice = *resp.file;
        res.body().handed_out = &sent;
        res.keep_alive(keep_alive);
        res.prepare_payload();
        http::response_serializer<file_slice_body> sr{res};
        co_await http::async_write_header(stream, sr, asio::use_awaitable);
        if constexpr (has_tls_socket<Stream>) {
          co_await ssl_write_range(stream.native_handle(), tcp.socket(), resp.file->file->fd, resp.file->offset,
                                   resp.file->length, ctx.opts.write_timeout, sent);
        } else {
          while (!sr.is_done()) {  // other streams (tests): Beast's serializer, a chunk at a time
            tcp.expires_after(ctx.opts.write_timeout);
            co_await http::async_write_some(stream, sr, asio::use_awaitable);
          }
        }
      }
    } catch (...) {
      failure = std::current_exception();
    }
    ctx.stats.bytes_served(resp.file->kind, sent);
    if (!resp.file->patch_id.empty()) ctx.cache.record_download(resp.file->patch_id, sent);
    if (failure) std::rethrow_exception(failure);
  } else if (resp.head_length) {
    http::response<http::empty_body> res{static_cast<http::status>(resp.status), version};
    detail::copy_headers(resp, res);
    res.keep_alive(keep_alive);
    res.content_length(*resp.head_length);
    http::response_serializer<http::empty_body> sr{res};
    tcp.expires_after(ctx.opts.write_timeout);
    co_await http::async_write_header(stream, sr, asio::use_awaitable);
  } else {
    http::response<http::string_body> res{static_cast<http::status>(resp.status), version};
    detail::copy_headers(resp, res);
    res.body() = std::move(resp.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    tcp.expires_after(ctx.opts.write_timeout);
    co_await http::async_write(stream, res, asio::use_awaitable);
  }
}

// After refusing a request whose body we did not read (401, 413, ...): stop sending, then
// discard what the client is still sending for a moment, so that closing does not reset the
// connection before the client has read our answer (nginx's lingering close).
template <class Stream>
asio::awaitable<void> linger(Stream& stream) {
  auto& tcp = beast::get_lowest_layer(stream);
  beast::error_code ec;
  tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  std::array<char, 16384> sink;
  std::uint64_t discarded = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!ec && discarded < (64u << 20) && std::chrono::steady_clock::now() < until) {
    tcp.expires_at(until);
    discarded += co_await tcp.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Runs `work` on a thread of `pool` and resumes the calling coroutine on its own executor with the
// result. The coroutine really leaves its I/O thread: `co_await asio::post(pool, use_awaitable)`
// does not (the completion is dispatched back to the coroutine's executor, so the work ran on the
// I/O thread after all: a report stuck on a locked index stalled every connection of that thread).
template <class Pool, class Work>
asio::awaitable<std::invoke_result_t<Work&>> on_pool(Pool& pool, Work work) {
  using result_t = std::invoke_result_t<Work&>;
  co_return co_await asio::co_spawn(
      pool.get_executor(), [&work]() -> asio::awaitable<result_t> { co_return work(); }, asio::use_awaitable);
}

// Runs `work` on `pool` unless `limit` calls are queued or running there already (counted in
// `queued`): then nullopt, the caller answers 503 + Retry-After, and `on_shed` runs.
template <class Pool, class Work, class Shed>
asio::awaitable<std::optional<std::invoke_result_t<Work&>>> on_bounded_pool(Pool& pool, std::atomic<std::size_t>& queued,
                                                                            std::size_t limit, Work work, Shed on_shed) {
  struct slot {
    std::atomic<std::size_t>& n;
    ~slot() { n.fetch_sub(1, std::memory_order_relaxed); }
  };
  if (queued.fetch_add(1, std::memory_order_relaxed) >= limit) {
    queued.fetch_sub(1, std::memory_order_relaxed);
    on_shed();
    co_return std::nullopt;
  }
  slot held{queued};
  co_return co_await on_pool(pool, std::move(work));
}

// True at most once per 10 s per `last_ns` (a shed is logged, a flood of them is not).
inline std::atomic<std::int64_t> writes_warned_ns{0}, lookups_warned_ns{0};
inline bool warning_due(std::atomic<std::int64_t>& last_ns) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto last = last_ns.load();
  return now - last >= std::chrono::nanoseconds(std::chrono::seconds(10)).count() && last_ns.compare_exchange_strong(last, now);
}

// A device's write (a report into the index) on the writer thread: a slow disk or database
// delays the reports, never the check-updates served by the I/O threads. The queue is bounded:
// past it the device is told to come back (503 + Retry-After; mallorn-agent keeps the report in
// its outbox), the shed is counted, and logged at most once per 10 s.
inline asio::awaitable<http_response> run_device_write(session_context& ctx, const http_request& req) {
  auto stored = co_await on_bounded_pool(ctx.write_pool, ctx.writes_queued, ctx.opts.max_queued_writes,
                                         [&] { return ctx.routes.handle(req); }, [&] {
                                           ctx.stats.device_write_shed();
                                           if (warning_due(writes_warned_ns))
                                             spdlog::warn("device writes: {} queued, the limit; reports are answered 503 "
                                                          "until the index catches up",
                                                          ctx.opts.max_queued_writes);
                                         });
  if (stored) co_return std::move(*stored);
  auto r = error_response(503, "busy", "too many reports are waiting to be stored; retry later");
  r.set("Retry-After", "5");
  r.route = "report";
  co_return r;
}

// An index lookup an I/O thread could not answer from memory (router::body_plan::ask_index; a
// check-update, or a shared index's /patch, that router::handle_inline() could not answer), run on
// the blocking pool. At most opts.max_queued_lookups wait or run at once; past that (an index
// locked or slow while many devices ask) nullopt: the caller answers busy_lookup(). Per client
// address the number is bounded by its connections (max_connections_per_address), one request each.
template <class Work>
asio::awaitable<std::optional<std::invoke_result_t<Work&>>> index_lookup(session_context& ctx, Work work) {
  co_return co_await on_bounded_pool(ctx.blocking_pool, ctx.lookups_queued, ctx.opts.max_queued_lookups, std::move(work), [&] {
    ctx.stats.index_lookup_shed();
    if (warning_due(lookups_warned_ns))
      spdlog::warn("index lookups: {} queued, the limit; device requests that need the index are answered 503",
                   ctx.opts.max_queued_lookups);
  });
}

// The answers when index_lookup() refused: come back in a moment. Before the body was read (the
// credentials), an error object and close; a check-update keeps its own shape (docs/api.md).
inline http_response busy_lookup() {
  auto r = error_response(503, "busy", "too many requests are waiting for the index; retry later");
  r.set("Retry-After", "1");
  r.route = "other";
  r.close = true;  // the body is not read
  return r;
}
inline http_response busy_check_update() {
  http_response r;
  r.status = 503;
  r.body = R"({"code":"index_busy","reason":"too many requests are waiting for the index; retry later",)"
           R"("retry_after":1,"status":"busy","update_available":false})" "\n";
  r.set("Content-Type", "application/json");
  r.set("Cache-Control", "no-store");
  r.set("Retry-After", "1");
  r.route = "check-update";
  return r;
}

// plan() and a check-update's handle() on the pool when the I/O thread could not answer from
// memory, into `out`. Coroutines of their own that return nothing, so that what they hold (a
// plan, an optional answer, the co_await's result) is in a frame that exists only while they
// run, not in serve_request()'s, which every request in progress holds (inline, they made each
// connection's frame 600-800 bytes larger).
inline asio::awaitable<void> plan_on_pool(session_context& ctx, const http_request& req, router::body_plan& out) {
  auto planned = co_await index_lookup(ctx, [&] { return ctx.routes.plan(req); });
  if (planned) {
    out = std::move(*planned);
  } else {
    out = router::body_plan{};
    out.reject = busy_lookup();
  }
}
inline asio::awaitable<void> handle_on_pool(session_context& ctx, const http_request& req, http_response& out) {
  auto answered = co_await index_lookup(ctx, [&] { return ctx.routes.handle(req); });
  if (answered) out = std::move(*answered);
  else if (req.method == "POST") out = busy_check_update();
  else out = busy_lookup();  // a GET /patch of a shared index
}
// router::handle_inline() into `out`; false: the answer needs the index (handle_on_pool).
inline bool answer_inline(session_context& ctx, const http_request& req, http_response& out) {
  auto answered = ctx.routes.handle_inline(req);
  if (answered) out = std::move(*answered);
  return answered.has_value();
}

// One request on `stream`, whose first bytes are in `buffer`: read, answered, logged. `keep_going`
// is set when the connection stays open for the next one. A coroutine of its own, called by
// serve_connection() once a request has begun: everything a request needs (parsers, the request,
// the plan, the response: ~3.4 KB) lives in this frame only while a request is served, not in
// every idle keep-alive connection's frame (issue 18: 10,000 idle connections).
template <class Stream>
asio::awaitable<void> serve_request(Stream& stream, session_context& ctx, const std::string& client,
                                    connection_state& state, beast::flat_buffer& buffer, bool& keep_going) {
  auto& tcp = beast::get_lowest_layer(stream);
  beast::error_code ec;
  const auto started = std::chrono::steady_clock::now();
  http::request_parser<http::empty_body> head;
  head.header_limit(ctx.opts.header_limit);
  // The body limit depends on the route (plan() below); the header parser must not apply
  // Beast's 1 MB default to the Content-Length it sees.
  head.body_limit(std::numeric_limits<std::uint64_t>::max());
  tcp.expires_after(ctx.opts.header_timeout);
  if (!detail::parse_buffered(head, buffer, false, ec))
    co_await http::async_read_header(stream, buffer, head, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (detail::is_parse_error(ec)) {
      const bool too_big = ec == http::error::header_limit;
      auto r = error_response(too_big ? 431 : 400, too_big ? "header_too_large" : "bad_request",
                              too_big ? "the request header is too large" : "malformed HTTP request: " + ec.message());
      r.route = "invalid";
      ctx.stats.request_done(r.route, r.status, 0);
      try {
        co_await write_response(stream, ctx, r, 11, false);
        co_await linger(stream);
      } catch (const std::exception&) {
      }
    }
    spdlog::debug("{}: reading a request header failed: {}", client, ec.message());
    co_return;
  }
  const auto& h = head.get();
  http_request req;
  req.method = std::string(h.method_string());
  req.target = std::string(h.target());
  req.client = client;
  req.client_key = state.key;
  req.peer_device_ids = state.peer_device_ids;
  for (const auto& field : h) {
    std::string name(field.name_string());
    for (auto& c : name)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ASCII: no locale call per byte
    req.headers[name] = std::string(field.value());
  }
  const unsigned version = h.version();
  bool keep_alive = h.keep_alive();

  // Framing first: a body whose length two parsers could disagree on is never read (a proxy in
  // front might have read it differently), and the connection ends after the answer.
  std::vector<std::string_view> transfer_encodings;
  for (const auto& field : h)
    if (field.name() == http::field::transfer_encoding)
      transfer_encodings.emplace_back(field.value().data(), field.value().size());
  const auto framing = check_framing(transfer_encodings, h.count(http::field::content_length) > 0, version);

  auto plan = framing.ok ? ctx.routes.plan(req, credential_lookup::memory_only) : router::body_plan{};
  if (plan.ask_index) co_await plan_on_pool(ctx, req, plan);  // credentials not in memory
  http_response resp;
  detail::staged_file staged;
  if (!framing.ok) {
    resp = error_response(framing.status, framing.code, framing.message);
    resp.route = "invalid";
    resp.close = true;
  } else if (plan.reject) {
    resp = std::move(*plan.reject);
  } else if (h.has_content_length() && head.content_length() && *head.content_length() > plan.limit) {
    resp = error_response(413, "body_too_large", "the request body exceeds " + std::to_string(plan.limit) + " bytes");
    resp.close = true;
  } else {
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
      tcp.expires_after(ctx.opts.write_timeout);
      co_await asio::async_write(stream, asio::buffer(continue_line, sizeof continue_line - 1), asio::use_awaitable);
    }
    std::optional<http_response> refused;
    if (plan.to_file) {
      http::request_parser<http::file_body> body_parser{std::move(head)};
      body_parser.body_limit(plan.limit);
      std::error_code dir_ec;
      std::filesystem::create_directories(ctx.opts.staging_dir, dir_ec);
      staged.path = detail::staging_name(ctx.opts.staging_dir);
      body_parser.get().body().open(staged.path.c_str(), beast::file_mode::write_new, ec);
      if (ec) {
        spdlog::error("cannot stage an upload in {}: {}", ctx.opts.staging_dir.string(), ec.message());
        if (core::is_transient_errno(ec.value())) {
          refused = error_response(503, "unavailable", "the server is short of resources; retry later");
          refused->set("Retry-After", "30");
        } else {
          refused = error_response(500, "io_error", "the upload cannot be staged; the server log says why");
        }
        ec = {};
        refused->close = true;
      } else {
        while (!body_parser.is_done()) {
          tcp.expires_after(ctx.opts.read_timeout);
          co_await http::async_read_some(stream, buffer, body_parser, asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
        }
        if (!ec && ::fsync(body_parser.get().body().file().native_handle()) != 0) ec = beast::errc::make_error_code(beast::errc::io_error);
        body_parser.get().body().file().close(ec);
        req.body_file = staged.path;
      }
    } else {
      http::request_parser<http::string_body> body_parser{std::move(head)};
      body_parser.body_limit(plan.limit);
      tcp.expires_after(ctx.opts.read_timeout);
      if (!detail::parse_buffered(body_parser, buffer, true, ec))
        co_await http::async_read(stream, buffer, body_parser, asio::redirect_error(asio::use_awaitable, ec));
      req.body = std::move(body_parser.get().body());
    }
    if (refused) {
      resp = std::move(*refused);
    } else if (ec == http::error::body_limit) {
      resp = error_response(413, "body_too_large", "the request body exceeds " + std::to_string(plan.limit) + " bytes");
      resp.close = true;
    } else if (ec && detail::is_parse_error(ec)) {
      // A bad chunk size (or one that overflows), a bad chunk extension...: the rest of the
      // stream cannot be framed, so this is the last answer on the connection.
      resp = error_response(400, "bad_request", "malformed request body: " + ec.message());
      resp.close = true;
    } else if (ec) {
      spdlog::debug("{} {} {}: reading the body failed: {}", client, req.method, core::log_safe(req.target), ec.message());
      co_return;  // timeout or the peer went away mid-body: nothing sensible to answer
    } else if (plan.device_write) {
      resp = co_await run_device_write(ctx, req);
    } else if (plan.blocking) {
      resp = co_await on_pool(ctx.blocking_pool, [&] { return ctx.routes.handle(req); });
    } else if (!answer_inline(ctx, req, resp)) {
      co_await handle_on_pool(ctx, req, resp);
    }
  }
  keep_alive = keep_alive && !resp.close && !ctx.draining;
  const std::string route = resp.route;
  const unsigned status = resp.status;
  try {
    co_await write_response(stream, ctx, resp, version, keep_alive);
  } catch (const std::exception& e) {
    spdlog::debug("{} {} {}: response aborted: {}", client, core::log_safe(req.method), core::log_safe(req.target), e.what());
    keep_alive = false;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ctx.stats.request_done(route, status, seconds);
  if (status >= 500) spdlog::warn("{} {} {} -> {} ({:.3f} s)", client, core::log_safe(req.method), core::log_safe(req.target), status, seconds);
  else if (spdlog::should_log(spdlog::level::debug))
    spdlog::debug("{} {} {} -> {} ({:.3f} s)", client, core::log_safe(req.method), core::log_safe(req.target), status, seconds);
  if (!keep_alive) {
    if (resp.close) co_await linger(stream);
    co_return;
  }
  keep_going = true;
}

// Serves requests on `stream` until the peer closes, an error, a timeout, or a drain.
// `state.idle` is true while the session waits for the next request (a drain may close it then).
// This frame is what an idle keep-alive connection holds: keep it small (serve_request()).
// An exception (a failed write, a timeout) ends the connection; it is logged at debug level.
template <class Stream>
asio::awaitable<void> serve_connection(Stream& stream, session_context& ctx, const std::string& client,
                                       connection_state& state) {
  auto& tcp = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer(ctx.opts.header_limit + 4096);
  bool first_request = true;
  try {
    for (;;) {
      if (ctx.draining) co_return;
      state.set_idle(true);
      if (buffer.size() == 0) {
        // Keep-alive wait: memory held per idle connection stays small. A new connection gets
        // only the header timeout to say something.
        buffer.shrink_to_fit();
        tcp.expires_after(first_request ? ctx.opts.header_timeout : ctx.opts.idle_timeout);
        beast::error_code ec;
        auto space = buffer.prepare(512);
        std::size_t n = co_await stream.async_read_some(space, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        buffer.commit(n);
      }
      state.set_idle(false);
      first_request = false;
      bool keep_going = false;
      co_await serve_request(stream, ctx, client, state, buffer, keep_going);
      if (!keep_going) co_return;
    }
  } catch (const std::exception& e) {
    spdlog::debug("{}: connection ended: {}", client, e.what());
  }
}

}  // namespace mallorn::server
