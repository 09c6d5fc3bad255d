#include "logging.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace tern::daemon {
namespace {

// sd-daemon(3) priorities: journald parses a leading "<N>" when the unit's stderr is the journal.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char* priority = "6";
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: priority = "7"; break;
      case spdlog::level::info: priority = "6"; break;
      case spdlog::level::warn: priority = "4"; break;
      case spdlog::level::err: priority = "3"; break;
      case spdlog::level::critical: priority = "2"; break;
      default: break;
    }
    dest.append(priority, priority + 1);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPriorityFlag>(); }
};

}  // namespace

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  const std::string value(stream);
  const std::size_t colon = value.find(':');
  if (colon == std::string::npos) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  try {
    return std::stoull(value.substr(0, colon)) == st.st_dev && std::stoull(value.substr(colon + 1)) == st.st_ino;
  } catch (const std::exception&) {
    return false;  // malformed: not set by systemd
  }
}

void init_logging(const DaemonConfig& config) {
  const bool journal = config.log_format == "journal" || (config.log_format == "auto" && stderr_is_journal());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (journal) {
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("<%*>%v");
  } else {
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  auto logger = journal ? spdlog::stderr_logger_mt("ternd") : spdlog::stderr_color_mt("ternd");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(config.log_level));  // validated by the config table
  logger->flush_on(spdlog::level::trace);  // stderr is line-oriented: a crash must not lose lines
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace tern::daemon
