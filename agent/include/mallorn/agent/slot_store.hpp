// Two slots per model and a `current` symlink that flips atomically:
//   <dir>/a/<file>, <dir>/b/<file>, <dir>/current -> a | b
// The inference runtime reads <dir>/current/<file>. The inactive slot is scratch space: it is only
// written while `current` points at the other one, so `current` always names a complete model.
#pragma once
#include <filesystem>
#include <string>

#include "mallorn/core/error.hpp"

namespace mallorn::agent {

class slot_store {
 public:
  slot_store(std::filesystem::path dir, std::string file_name);

  // "a" or "b"; a store without `current` is not provisioned (install() first).
  core::result<std::string> active() const;
  static std::string other(const std::string& slot) { return slot == "a" ? "b" : "a"; }
  std::filesystem::path model_path(const std::string& slot) const { return dir_ / slot / file_; }
  std::filesystem::path current_model() const { return dir_ / "current" / file_; }
  bool provisioned() const;

  // Points `current` at `slot`: symlink to a temp name, rename over `current`, fsync the directory.
  core::result<void> activate(const std::string& slot);
  // First installation: copies `model` into slot a (atomically) and activates it.
  core::result<void> install(const std::filesystem::path& model);
  // Empties a slot (it must not be the active one).
  core::result<void> clear(const std::string& slot);
  // Removes what an interrupted atomic write left behind (journal and link temp files).
  void remove_stale_temp_files() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string file_;
};

// fsync of a directory (after a rename in it).
core::result<void> fsync_directory(const std::filesystem::path& dir);

}  // namespace mallorn::agent
