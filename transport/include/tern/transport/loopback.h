// An in-process Transport: N ranks in one process (typically one thread each) exchange messages
// through shared mailboxes. It follows the Transport contract exactly (callbacks only from
// progress(), every operation completes once, per-pair per-tag ordering, truncation and peer
// failure reported as errors), so the collective engine can be tested and benchmarked without a
// network, as gloo tests its algorithms over an in-memory transport.
//
// Thread safety: create the hub, then hand each rank's Transport to its own thread. Transports of
// different ranks may be used concurrently; one rank's Transport is driven by one thread, as the
// interface requires.
#pragma once

#include <memory>
#include <vector>

#include "tern/transport/transport.h"

namespace tern::transport {

struct LoopbackHub;

/// Creates `size` connected transports (index = rank). Each may be destroyed independently: a
/// destroyed rank looks like a dead peer to the others ("rank r (loopback) left").
std::vector<std::unique_ptr<Transport>> make_loopback_group(int size);

}  // namespace tern::transport
