// mallorn-lora-gateway: bridges simulated LoRa devices (UDP on loopback) to Mallorn's MQTT
// protocol, with TS004 forward error correction on the downlink (see --help).
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <spdlog/spdlog.h>
#include <thread>

#include "mallorn/core/io.hpp"
#include "mallorn/proto/lora_gateway.hpp"
#include "mallorn/proto/sim_options.hpp"

namespace {

const char* usage =
    "usage: mallorn-lora-gateway --broker tcp://HOST:PORT [--radio-port N] [options]\n"
    "Bridges devices on a simulated LoRa radio (UDP datagrams on 127.0.0.1) to the Mallorn MQTT\n"
    "protocol: fragments the patch blocks a device asks for into radio frames with TS004 parity\n"
    "frames, so lost frames are rebuilt without a round trip. docs/protocol.md.\n\n"
    "  --broker URI         the MQTT broker mallornd's bridge listens on\n"
    "  --radio-port N       UDP port devices send to (default 0: any; see --port-file)\n"
    "  --port-file FILE     write the radio port here once bound\n"
    "  --loss P             downlink frame loss 0..0.9 (default 0)\n"
    "  --frame-size N       largest radio frame 51..242 bytes (default 242)\n"
    "  --duty-cycle D       transmitter duty cycle (0, 1] (default 0.01: EU868)\n"
    "  --spreading-factor N 7..12, for time on air (default 7)\n"
    "  --assumed-loss P     parity budget before a device reported loss (default 0.1)\n"
    "  --max-block N        block size asked of the server for radio devices (default 1024)\n"
    "  --seed N             loss pattern seed (default 1)\n"
    "  --stats FILE         JSON traffic counters, rewritten after each finished update and at exit\n"
    "  --client-id ID       MQTT client id (default mallorn-lora-gateway)\n"
    "  --prefix P           topic prefix (default mallorn/v1)\n"
    "  --log-level L        debug, info, warn, error (default info)\n"
    "  --json               print the final counters as JSON on stdout at exit\n"
    "  --help               this text\n"
    "SIGTERM/SIGINT stop it (the stats file is written first).\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace mallorn::proto;
  ::signal(SIGPIPE, SIG_IGN);  // a broker that drops the connection is handled, not fatal
  auto args = cli_args::parse({argv + 1, argv + argc},
                              {"broker", "radio-port", "port-file", "loss", "frame-size", "duty-cycle", "spreading-factor",
                               "assumed-loss", "max-block", "seed", "stats", "client-id", "prefix", "log-level"},
                              {"json", "help"});
  if (!args) {
    std::cerr << "mallorn-lora-gateway: " << args.err().message << "\n";
    return 2;
  }
  if (args->has("help")) {
    std::cout << usage;
    return 0;
  }
  gateway_options o;
  o.broker = args->text("broker");
  o.client_id = args->text("client-id", o.client_id);
  o.prefix = args->text("prefix", o.prefix);
  o.stats_file = args->text("stats");
  auto port = args->whole("radio-port", 0, 0, 65535), frame = args->whole("frame-size", 242, 51, 242),
       sf = args->whole("spreading-factor", 7, 7, 12), block = args->whole("max-block", 1024, 64, 65535),
       seed = args->whole("seed", 1, 0, UINT64_MAX);
  auto loss = args->real("loss", 0, 0, 0.9), duty = args->real("duty-cycle", 0.01, 1e-6, 1),
       assumed = args->real("assumed-loss", 0.1, 0, 0.9);
  for (auto* r : {&port, &frame, &sf, &block, &seed})
    if (!*r) return std::cerr << "mallorn-lora-gateway: " << r->err().message << "\n", 2;
  for (auto* r : {&loss, &duty, &assumed})
    if (!*r) return std::cerr << "mallorn-lora-gateway: " << r->err().message << "\n", 2;
  if (auto ok = check_broker_uri(o.broker); !ok) return std::cerr << "mallorn-lora-gateway: --broker: " << ok.err().message << "\n", 2;
  o.radio_port = static_cast<std::uint16_t>(*port);
  o.radio = {*loss, static_cast<std::uint32_t>(*frame), *duty, static_cast<int>(*sf), 125000, *seed};
  o.assumed_loss = *assumed;
  o.max_block = static_cast<std::uint16_t>(*block);
  spdlog::set_level(spdlog::level::from_str(args->text("log-level", "info")));
  o.log = [](int level, const std::string& line) {
    static const spdlog::level::level_enum levels[] = {spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
                                                       spdlog::level::err};
    spdlog::log(levels[std::clamp(level, 0, 3)], "{}", line);
  };

  // Signals are taken synchronously by one thread, which stops the loop.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  lora_gateway gw(o);
  if (auto s = gw.start(); !s) {
    spdlog::critical("{}", s.err().what());
    return 1;
  }
  spdlog::info("radio on udp 127.0.0.1:{} (frame {} bytes, loss {}, duty cycle {}); MQTT {}", gw.radio_port(),
               o.radio.frame_size, o.radio.loss, o.radio.duty_cycle, o.broker);
  if (args->has("port-file")) {
    const auto text = std::to_string(gw.radio_port()) + "\n";
    if (auto w = mallorn::core::write_file_atomic(args->text("port-file"),
                                                  {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
        !w)
      spdlog::error("{}", w.err().what());
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    spdlog::info("signal {}: stopping", sig);
    gw.stop();
  });
  gw.run();
  if (args->has("json")) std::cout << gw.stats_json() << "\n";
  // The waiter is blocked in sigwait when run() ended for another reason; nothing else stops it.
  if (waiter.joinable()) waiter.detach();
  return 0;
}
