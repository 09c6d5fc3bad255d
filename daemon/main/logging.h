// ternd's logging: spdlog to stderr, as the default logger, so the transport libraries' messages
// (which log through spdlog's default logger) share the format and level.
#pragma once

#include "tern/daemon/config.h"

namespace tern::daemon {

/// True when stderr is connected to journald: JOURNAL_STREAM names stderr's device and inode
/// (systemd sets it for StandardError=journal, the default for services).
bool stderr_is_journal();

/// Installs the stderr logger. "journal" format: each line starts with its syslog priority
/// ("<6>", "<4>", ...) and has no timestamp, so journald keeps levels (`journalctl -p warning`)
/// and adds its own time. "text": timestamp, level, message. "auto": journal when
/// stderr_is_journal(). Call once, from main, before starting threads.
void init_logging(const DaemonConfig& config);

}  // namespace tern::daemon
