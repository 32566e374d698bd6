#include "mallorn/proto/device_sim.hpp"

#include <nlohmann/json.hpp>

#include "mallorn/core/hash.hpp"
#include "mallorn/proto/lora_gateway.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "mallorn/proto/sim_options.hpp"
#include "mallorn/proto/topics.hpp"

namespace mallorn::proto {

std::string sim_usage() {
  return "usage: mallorn-mcu-sim --model FILE --out FILE (--broker tcp://HOST:PORT --device-id ID | --lora-gateway PORT)\n"
         "                       [options]\n"
         "A simulated microcontroller that updates its model over Mallorn's MQTT protocol, directly or\n"
         "through the LoRa gateway (mallorn-lora-gateway). The patch goes into a file-backed flash\n"
         "download area (erase-before-write enforced), is checked against the offer's SHA-256 and\n"
         "size, and applied; the new model appears at --out only once its hash matched. docs/protocol.md.\n\n"
         "  --model FILE          the model the device runs (its SHA-256 is announced)\n"
         "  --out FILE            where the updated model is written\n"
         "  --broker URI          MQTT mode: the broker, e.g. tcp://127.0.0.1:1883\n"
         "  --device-id ID        MQTT mode: the device id ([A-Za-z0-9._-], up to 64)\n"
         "  --lora-gateway PORT   LoRa mode: the gateway's UDP port on 127.0.0.1\n"
         "  --lora-addr HEX       LoRa mode: device address (default: hashed from --device-id)\n"
         "  --loss P              LoRa uplink frame loss 0..0.9 (default 0)\n"
         "  --frame-size N        LoRa frame size 51..242 (default 242; must match the gateway)\n"
         "  --duty-cycle D        LoRa uplink duty cycle (default 0.01)\n"
         "  --seed N              loss pattern seed (default 1)\n"
         "  --flash FILE          download area file (default OUT.flash)\n"
         "  --flash-size SIZE     download area size (default 4M)\n"
         "  --sector-size N       flash sector size (default 4096)\n"
         "  --power-cut-at N      lose power at flash operation N (exit code 3)\n"
         "  --max-block N         largest block the device accepts, 64..65535 (default 1024)\n"
         "  --free-ram N          RAM announced for the updater (default 64K)\n"
         "  --timeout S           give up after S seconds (default 120)\n"
         "  --prefix P            topic prefix (default mallorn/v1)\n"
         "  --json                print the result as one JSON object\n"
         "  --help                this text\n"
         "Exit codes: 0 updated or up to date, 1 failed, 2 bad command line, 3 power lost.\n";
}

core::result<sim_config> parse_sim_args(const std::vector<std::string>& argv) {
  auto args = cli_args::parse(argv,
                              {"broker", "device-id", "lora-gateway", "lora-addr", "loss", "frame-size", "duty-cycle", "seed",
                               "model", "out", "flash", "flash-size", "sector-size", "power-cut-at", "max-block", "free-ram",
                               "timeout", "prefix"},
                              {"json", "help"});
  if (!args) return args.err();
  sim_config c;
  c.help = args->has("help");
  c.json = args->has("json");
  if (c.help) return c;
  auto bad = [](const std::string& w) { return core::make_error(core::errc::invalid_argument, w); };
  c.broker = args->text("broker");
  c.device_id = args->text("device-id");
  c.prefix = args->text("prefix", "mallorn/v1");
  c.model = args->text("model");
  c.out = args->text("out");
  if (c.model.empty() || c.out.empty()) return bad("--model and --out are required");
  c.flash = args->has("flash") ? std::filesystem::path(args->text("flash")) : std::filesystem::path(c.out.string() + ".flash");
  auto port = args->whole("lora-gateway", 0, 1, 65535);
  if (!port) return port.err();
  c.lora_gateway = static_cast<std::uint16_t>(*port);
  if (c.broker.empty() == (c.lora_gateway == 0)) return bad("give either --broker (MQTT) or --lora-gateway (LoRa)");
  if (auto ok = check_broker_uri(c.broker); !c.broker.empty() && !ok) return bad("--broker: " + ok.err().message);
  if (c.lora_gateway) {
    if (args->has("lora-addr")) {
      c.lora_addr = static_cast<std::uint32_t>(std::strtoul(args->text("lora-addr").c_str(), nullptr, 16));
      if (c.lora_addr == 0) return bad("--lora-addr: expected non-zero hex");
    } else {
      std::uint32_t h = 2166136261u;  // FNV-1a of the device id
      for (char ch : c.device_id.empty() ? std::string("device") : c.device_id) h = (h ^ static_cast<std::uint8_t>(ch)) * 16777619u;
      c.lora_addr = h ? h : 1;
    }
    c.device_id = lora_device_id(c.lora_addr);
  } else if (!valid_device_id(c.device_id)) {
    return bad("--device-id: 1..64 characters of [A-Za-z0-9._-] required in MQTT mode");
  }
  auto loss = args->real("loss", 0, 0, 0.9), duty = args->real("duty-cycle", 0.01, 1e-6, 1);
  auto frame = args->whole("frame-size", 242, 51, 242), seed = args->whole("seed", 1, 0, UINT64_MAX);
  auto fsize = args->whole("flash-size", 4 << 20, 4096, 1ull << 32), sector = args->whole("sector-size", 4096, 256, 1 << 20);
  auto cut = args->whole("power-cut-at", 0, 0, UINT64_MAX), block = args->whole("max-block", 1024, 64, 65535);
  auto ram = args->whole("free-ram", 64 << 10, 0, UINT32_MAX), timeout = args->whole("timeout", 120, 1, 86400);
  for (auto* r : {&frame, &seed, &fsize, &sector, &cut, &block, &ram, &timeout})
    if (!*r) return r->err();
  if (!loss) return loss.err();
  if (!duty) return duty.err();
  c.radio = {*loss, static_cast<std::uint32_t>(*frame), *duty, 7, 125000, *seed};
  c.flash_size = *fsize;
  c.sector_size = static_cast<std::uint32_t>(*sector);
  if (c.flash_size % c.sector_size) return bad("--flash-size must be a multiple of --sector-size");
  c.power_cut_at = *cut;
  c.device.max_block = static_cast<std::uint32_t>(*block);
  c.device.free_ram = static_cast<std::uint32_t>(*ram);
  c.device.deadline = std::chrono::seconds(*timeout);
  return c;
}

core::result<device_result> run_sim(const sim_config& cfg) {
  auto digest = core::sha256_of_file(cfg.model);
  if (!digest) return digest.err().with("reading " + cfg.model.string());
  auto flash = flash_sim::open(cfg.flash, cfg.flash_size, cfg.sector_size);
  if (!flash) return flash.err();
  flash->cut_power_at(cfg.power_cut_at);
  flash_download sink(*flash, cfg.model, cfg.out);
  std::unique_ptr<device_link> link;
  if (cfg.lora_gateway)
    link = make_lora_link({cfg.lora_gateway, cfg.lora_addr, cfg.radio});
  else
    link = make_mqtt_link({cfg.broker, cfg.device_id, cfg.prefix});
  auto opts = cfg.device;
  opts.sha256 = core::to_hex(*digest);
  mcu_device dev(opts, *link, sink);
  auto res = dev.run();
  link->close();
  return res;
}

std::string result_json(const sim_config& cfg, const device_result& r) {
  nlohmann::json j = {{"ok", r.ok()},
                      {"outcome", r.outcome},
                      {"device_id", cfg.device_id},
                      {"transport", cfg.lora_gateway ? "lora" : "mqtt"},
                      {"seconds", r.seconds},
                      {"requests", r.requests},
                      {"blocks_received", r.blocks_received},
                      {"blocks_resumed", r.blocks_resumed},
                      {"duplicate_blocks", r.duplicate_blocks},
                      {"patch_size", r.offer.patch_size},
                      {"patch_sha256", r.offer.patch_sha256},
                      {"block_size", r.offer.block_size},
                      {"new_sha256", r.new_sha256},
                      {"link", {{"messages_out", r.link.messages_out}, {"bytes_out", r.link.bytes_out},
                                {"lost_out", r.link.lost_out}, {"messages_in", r.link.messages_in},
                                {"bytes_in", r.link.bytes_in}}}};
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump();
}

std::string setup_error_json(const core::error& e) {
  return nlohmann::json{{"ok", false}, {"outcome", "failed"}, {"error", e.what()}}.dump();
}

int exit_code(const device_result& r) {
  if (r.ok()) return 0;
  return r.outcome == "power_lost" ? 3 : 1;
}

}  // namespace mallorn::proto
