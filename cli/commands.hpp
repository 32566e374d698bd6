// One function per `mallorn` subcommand; each returns the process exit code.
#pragma once
#include <string>
#include <vector>

namespace mallorn::cli {

using arg_list = std::vector<std::string>;

struct command {
  const char* name;
  const char* summary;
  const char* usage;  // full --help text
  int (*run)(const arg_list& args);
};

const std::vector<command>& commands();

int cmd_diff(const arg_list& args);
int cmd_patch(const arg_list& args);
int cmd_verify(const arg_list& args);
int cmd_info(const arg_list& args);
int cmd_fingerprint(const arg_list& args);
int cmd_keygen(const arg_list& args);
int cmd_sign(const arg_list& args);
int cmd_fleet(const arg_list& args);
int cmd_keyring(const arg_list& args);

}  // namespace mallorn::cli
