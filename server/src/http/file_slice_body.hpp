// A Beast Body that sends [offset, offset + length) of an open file with pread, a chunk at a
// time: memory per download is one chunk whatever the file size.
#pragma once
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <boost/optional.hpp>
#include <memory>

#include "mallorn/server/router.hpp"

namespace mallorn::server {

struct file_slice_body {
  struct value_type {
    file_slice slice;
    std::uint64_t* handed_out = nullptr;  // body bytes given to the serializer (accounting)
  };

  static std::uint64_t size(const value_type& v) { return v.slice.length; }

  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;
    static constexpr std::size_t chunk = 256 << 10;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body) : body_(body) {}

    // The chunk buffer is made on the first get(): the serializer calls init() before writing the
    // header, and a plain-TCP download never calls get() (sendfile sends the body). Allocating
    // and zeroing 256 KiB there cost every download an mmap, page faults and a memset (issue 18).
    void init(boost::beast::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      const std::uint64_t remaining = body_.slice.length - pos_;
      if (remaining == 0) {
        ec = {};
        return boost::none;
      }
      const std::size_t want = remaining < chunk ? static_cast<std::size_t>(remaining) : chunk;
      if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(chunk);
      const ssize_t got = ::pread(body_.slice.file->fd, buffer_.get(), want,
                                  static_cast<off_t>(body_.slice.offset + pos_));
      if (got <= 0) {  // the file shrank or failed under us: abort the response, never pad it
        ec = boost::beast::http::error::short_read;
        return boost::none;
      }
      pos_ += static_cast<std::uint64_t>(got);
      if (body_.handed_out) *body_.handed_out = pos_;
      ec = {};
      return {{const_buffers_type(buffer_.get(), static_cast<std::size_t>(got)), pos_ < body_.slice.length}};
    }

   private:
    const value_type& body_;
    std::unique_ptr<char[]> buffer_;
    std::uint64_t pos_ = 0;
  };
};

}  // namespace mallorn::server
