#include "mallorn/server/ui_files.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "mallorn/core/hash.hpp"

namespace fs = std::filesystem;

namespace mallorn::server {
namespace {

const char* content_type_of(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".json") return "application/json";
  return nullptr;
}

}  // namespace

core::result<std::shared_ptr<const ui_files>> ui_files::load(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return core::make_error(core::errc::io_error, "dashboard files: " + dir.string() + " is not a directory");
  auto out = std::make_shared<ui_files>();
  std::size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const char* type = content_type_of(it->path());
    if (!type) continue;
    if (out->files_.size() >= ui_max_files || total + it->file_size(ec) > ui_max_bytes)
      return core::make_error(core::errc::invalid_argument,
                              "dashboard files: " + dir.string() + " holds more than the dashboard ever ships");
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in.good() && !in.eof()) return core::make_error(core::errc::io_error, "dashboard files: cannot read " + it->path().string());
    ui_file f;
    f.content_type = type;
    f.body = body.str();
    const auto digest = core::sha256_of({reinterpret_cast<const std::uint8_t*>(f.body.data()), f.body.size()});
    f.etag = "\"" + core::to_hex(digest).substr(0, 32) + "\"";
    total += f.body.size();
    out->files_.emplace(fs::relative(it->path(), dir).generic_string(), std::move(f));
  }
  if (ec) return core::make_error(core::errc::io_error, "dashboard files: " + dir.string() + ": " + ec.message());
  if (!out->find("index.html"))
    return core::make_error(core::errc::invalid_argument, "dashboard files: no index.html in " + dir.string());
  return std::shared_ptr<const ui_files>(std::move(out));
}

fs::path ui_files::default_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "mallorn" / "ui";
    if (fs::exists(installed / "index.html", ec)) return installed;
  }
  return MALLORN_UI_SOURCE_DIR;
}

const ui_file* ui_files::find(const std::string& relative) const {
  auto it = files_.find(relative);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace mallorn::server
