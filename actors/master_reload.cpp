// The master process's reload by generations and the retire of workers
// (master_process.hpp).

#include "actors/master_process.hpp"

#include "caf/send.hpp"

#include "actors/notify.hpp"
#include "actors/workers.hpp"
#include "quiesce/log.hpp"

namespace quiesce {

namespace {

constexpr const char* component = "master";

} // namespace

void master_process::reload() {
  notify::reloading();
  server_config fresh;
  std::vector<std::string> text{program_};
  text.insert(text.end(), args_.begin(), args_.end());
  std::vector<char*> argv;
  for (auto& x : text)
    argv.push_back(x.data());
  argv.push_back(nullptr);
  // Reads the config file again and checks every value, as at the start; a
  // bad value is printed on standard error by the check itself.
  if (auto code
      = configure(fresh, static_cast<int>(text.size()), argv.data())) {
    log::error(component, "reload failed: the configuration is not valid "
                          "(see above); the workers go on serving");
    notify::reloaded("reload failed: the configuration is not valid; "
                       + std::to_string(count_) + " workers serve on "
                       + lst_.address,
                     count_);
    return;
  }
  if (fresh.host != cfg_.host || fresh.port != cfg_.port)
    log::warning(component, "reload: host and port stay " + lst_.address
                              + " (the socket is kept; a restart moves it)");
  protocol_ = fresh.protocol;
  // The new workers write in the format read now: so do the master's lines
  // from here on (one stream, one format for a log shipper).
  log::format fmt = log::format::text;
  log::parse_format(fresh.log_format, fmt); // checked by its rule
  log::set_format(fmt);
  drain_timeout_ = fresh.drain_timeout;
  ready_timeout_ = fresh.workers_ready_timeout;
  seq_.set_delay(fresh.stop_delay);
  // New workers (and restarts from now on) get the text read now.
  config_ = fresh.config;
  auto count = worker_count(fresh);
  ++generation_;
  reload_.emplace();
  reload_->generation = generation_;
  reload_->began = clock_type::now();
  log::info(component, "reload: starting generation "
                         + std::to_string(generation_) + " ("
                         + std::to_string(count) + " workers)");
  start_generation(count, reload_->ids);
  if (reload_)
    self_->delayed_send(self_, ready_timeout_, timer_atom_v,
                        timer_token(ready_timer, generation_));
}

void master_process::reload_ready() {
  auto took = clock_type::now() - reload_->began;
  log::info(component, "reload: generation " + std::to_string(generation_)
                         + " ready in " + log::millis(took) + "; retiring "
                         + std::to_string(current_.size())
                         + " workers of the one before");
  auto old = std::move(current_);
  current_ = std::move(reload_->ids);
  count_ = current_.size();
  reload_.reset();
  ++reloads_done_;
  notify::reloaded("reloaded: generation " + std::to_string(generation_)
                     + " serves on " + lst_.address + " ("
                     + std::to_string(count_) + " workers)",
                   count_);
  for (auto id : old)
    retire(id);
  if (reload_pending_) {
    reload_pending_ = false;
    log::info(component, "the SIGHUP received during the reload: reloading");
    reload();
  }
}

void master_process::reload_failed(const std::string& why) {
  if (!reload_)
    return;
  log::error(component, "reload failed: " + why + "; generation "
                          + std::to_string(reload_->generation)
                          + " is retired, the workers before it go on "
                            "serving");
  auto ids = std::move(reload_->ids);
  reload_.reset();
  reload_pending_ = false;
  notify::reloaded("reload failed: " + why + "; " + std::to_string(count_)
                     + " workers serve on " + lst_.address,
                   count_);
  for (auto id : ids)
    retire(id);
}

void master_process::retire(uint32_t id) {
  for (auto& [pid, c] : children_) {
    if (c.id != id)
      continue;
    if (!c.retired) {
      c.retired = true;
      self_->delayed_send(
        self_, drain_timeout_ + exit_margin, timer_atom_v,
        timer_token(retire_timer, static_cast<uint32_t>(pid)));
    }
  }
  // The control plane sends it now, or when it registers.
  if (master_alive_)
    self_->send(master_, retire_atom_v, id);
}

} // namespace quiesce
