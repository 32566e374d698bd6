// mallorn-mcu-sim: one simulated microcontroller updating its model (see --help).
#include <signal.h>

#include <iostream>

#include "mallorn/proto/device_sim.hpp"

int main(int argc, char** argv) {
  using namespace mallorn::proto;
  ::signal(SIGPIPE, SIG_IGN);  // a broker that drops the connection is handled, not fatal
  auto cfg = parse_sim_args({argv + 1, argv + argc});
  if (!cfg) {
    std::cerr << "mallorn-mcu-sim: " << cfg.err().message << "\n";
    return 2;
  }
  if (cfg->help) {
    std::cout << sim_usage();
    return 0;
  }
  auto res = run_sim(*cfg);
  if (!res) {
    if (cfg->json) std::cout << setup_error_json(res.err()) << "\n";
    std::cerr << "mallorn-mcu-sim: " << res.err().what() << "\n";
    return 1;
  }
  if (cfg->json)
    std::cout << result_json(*cfg, *res) << "\n";
  else
    std::cout << res->outcome << (res->error.empty() ? "" : ": " + res->error) << " (" << res->seconds << " s, "
              << res->blocks_received << " blocks, " << res->requests << " requests)\n";
  return exit_code(*res);
}
