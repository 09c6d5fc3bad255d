// A trainer process for the daemon tests: connects to ternd through libtern, joins a group and
// runs allreduces on deterministic inputs (trainer_data.h), writing every result to --out.
// Output file: "ok\n" + the raw result bytes of each iteration, or "error <status>: <message>\n".
// Fault modes: --exit-before N (exits without submitting iteration N: a trainer that dies),
// --setuid UID (drops to that uid first: the permission test). --print-unique-id 1 prints an id.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tern/daemon/hierarchical.h"
#include "tern/tern.h"
#include "tern/transport/bootstrap.h"
#include "trainer_data.h"

namespace {

struct Args {
  std::string socket, id, out;
  int rank = 0, nranks = 1, local_size = 1, iters = 1, exit_before = -1, setuid_to = -1;
  std::size_t count = 1000;
  int dtype = 0, op = 0, scatter = 3, gather = 3;
  unsigned timeout_ms = 20000;
  std::uint64_t data_seed = 1;
  bool registered = false;  // use tern_register'ed host memory instead of tern_alloc
  bool print_unique_id = false;  // print a fresh id from this ternd and exit
  bool verify = false;      // compare every result with hierarchical_reference (all ranks' inputs are known)
  int inflight = 1;         // allreduces submitted before waiting for them (each in its own buffer)
};

tern_client_t* g_client = nullptr;  // released on every exit path (the asan build checks leaks)
tern_group_t* g_group = nullptr;

int finish_error(const Args& a, tern_status_t s, const std::string& what) {
  {
    std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
    f << "error " << tern_status_name(s) << ": " << what << ": " << tern_last_error() << "\n";
  }
  tern_group_destroy(g_group);
  tern_disconnect(g_client);
  return 1;
}

// The trainers' inputs are deterministic, so any trainer can compute what every trainer must hold.
bool matches_reference(const Args& a, int iter, const void* result) {
  const auto dtype = static_cast<tern::kernels::DType>(a.dtype);
  std::vector<std::vector<std::vector<std::uint8_t>>> inputs(static_cast<std::size_t>(a.nranks / a.local_size));
  for (int r = 0; r < a.nranks; ++r)
    inputs[static_cast<std::size_t>(r / a.local_size)].push_back(
        tern::daemon::test::trainer_input(a.data_seed, r, iter, a.count, dtype));
  tern::collective::AllreduceOptions options;
  options.op = static_cast<tern::collective::ReduceOp>(a.op);
  options.dtype = dtype;
  options.scatter_codec = static_cast<tern::kernels::Codec>(a.scatter);
  options.gather_codec = static_cast<tern::kernels::Codec>(a.gather);
  tern::collective::CommunicatorOptions comm;
  auto id = tern::transport::UniqueId::parse(a.id);
  if (!id) return false;
  std::memcpy(&comm.seed, id->secret().data(), sizeof comm.seed);  // ternd's seed when trainers pass 0
  auto expected = tern::daemon::hierarchical_reference(inputs, a.count, options, comm, static_cast<std::uint64_t>(iter));
  return expected.is_ok() && std::memcmp(expected->data(), result, expected->size()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--socket") a.socket = v;
    else if (k == "--id") a.id = v;
    else if (k == "--out") a.out = v;
    else if (k == "--rank") a.rank = std::stoi(v);
    else if (k == "--nranks") a.nranks = std::stoi(v);
    else if (k == "--local") a.local_size = std::stoi(v);
    else if (k == "--iters") a.iters = std::stoi(v);
    else if (k == "--inflight") a.inflight = std::max(1, std::stoi(v));
    else if (k == "--count") a.count = std::stoul(v);
    else if (k == "--dtype") a.dtype = std::stoi(v);
    else if (k == "--op") a.op = std::stoi(v);
    else if (k == "--scatter") a.scatter = std::stoi(v);
    else if (k == "--gather") a.gather = std::stoi(v);
    else if (k == "--data-seed") a.data_seed = std::stoull(v);
    else if (k == "--exit-before") a.exit_before = std::stoi(v);
    else if (k == "--setuid") a.setuid_to = std::stoi(v);
    else if (k == "--timeout-ms") a.timeout_ms = static_cast<unsigned>(std::stoul(v));
    else if (k == "--registered") a.registered = v == "1";
    else if (k == "--verify") a.verify = v == "1";
    else if (k == "--print-unique-id") a.print_unique_id = v == "1";
  }
  if (a.setuid_to >= 0 && (setgid(static_cast<gid_t>(a.setuid_to)) != 0 || setuid(static_cast<uid_t>(a.setuid_to)) != 0)) {
    std::perror("setuid");
    return 2;
  }
  tern_client_t*& client = g_client;
  tern_status_t s = tern_connect(a.socket.c_str(), &client);
  if (s != TERN_OK) return finish_error(a, s, "connect");
  tern_unique_id_t id{};
  if (a.print_unique_id) {
    if ((s = tern_get_unique_id(client, &id)) != TERN_OK) return finish_error(a, s, "unique id");
    std::printf("%s\n", id.text);
    tern_disconnect(client);
    return 0;
  }
  std::snprintf(id.text, sizeof id.text, "%s", a.id.c_str());
  tern_group_config_t config{};
  config.struct_size = sizeof config;
  config.rank = a.rank;
  config.nranks = a.nranks;
  config.local_size = a.local_size;
  config.timeout_ms = a.timeout_ms;
  tern_group_t*& group = g_group;
  s = tern_group_join(client, &id, &config, &group);
  if (s != TERN_OK) return finish_error(a, s, "join");
  const auto dtype = static_cast<tern::kernels::DType>(a.dtype);
  const std::size_t bytes = a.count * tern::kernels::dtype_size(dtype);
  std::vector<void*> buffers(static_cast<std::size_t>(a.inflight));
  std::vector<std::vector<std::uint8_t>> host(buffers.size());
  for (std::size_t b = 0; b < buffers.size(); ++b) {
    if (a.registered) {
      host[b].resize(bytes);
      buffers[b] = host[b].data();
      s = tern_register(client, buffers[b], bytes);
    } else {
      s = tern_alloc(client, bytes, &buffers[b]);
    }
    if (s != TERN_OK) return finish_error(a, s, "memory");
  }
  std::string results;
  for (int first = 1; first <= a.iters; first += a.inflight) {
    const int last = std::min(a.iters, first + a.inflight - 1);
    std::vector<tern_request_t*> requests;
    for (int iter = first; iter <= last; ++iter) {
      if (iter == a.exit_before) _exit(3);  // dies with its connection, arenas and group open
      void* buffer = buffers[static_cast<std::size_t>(iter - first)];
      const auto input = tern::daemon::test::trainer_input(a.data_seed, a.rank, iter, a.count, dtype);
      std::memcpy(buffer, input.data(), bytes);
      tern_allreduce_args_t args;
      tern_allreduce_args_init(&args);
      args.buffer = buffer;
      args.count = a.count;
      args.dtype = static_cast<tern_dtype_t>(a.dtype);
      args.op = static_cast<tern_reduce_op_t>(a.op);
      args.scatter_codec = static_cast<tern_codec_t>(a.scatter);
      args.gather_codec = static_cast<tern_codec_t>(a.gather);
      args.tensor_key = static_cast<std::uint64_t>(iter);  // fresh residuals each time (matches the reference)
      args.timeout_ms = a.timeout_ms;
      tern_request_t* request = nullptr;
      s = tern_allreduce(group, &args, &request);
      if (s != TERN_OK) return finish_error(a, s, "allreduce " + std::to_string(iter));
      requests.push_back(request);
    }
    // Every request is waited for and freed before anything is reported (the asan build checks leaks).
    std::vector<std::string> errors(requests.size());
    std::vector<tern_status_t> statuses(requests.size(), TERN_OK);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      statuses[i] = tern_wait(requests[i], static_cast<int>(a.timeout_ms) + 10'000);
      if (statuses[i] != TERN_OK) errors[i] = tern_request_error(requests[i]);
      tern_request_free(requests[i]);
    }
    for (int iter = first; iter <= last; ++iter) {
      const auto i = static_cast<std::size_t>(iter - first);
      if (statuses[i] != TERN_OK) {
        {
          std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
          f << "error " << tern_status_name(statuses[i]) << ": allreduce " << iter << ": " << errors[i] << "\n";
        }
        tern_group_destroy(group);
        tern_disconnect(client);
        return 1;
      }
      const void* buffer = buffers[static_cast<std::size_t>(iter - first)];
      results.append(static_cast<const char*>(buffer), bytes);
      if (a.verify && !matches_reference(a, iter, buffer)) {
        {
          std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
          f << "error mismatch: allreduce " << iter << " differs from hierarchical_reference\n";
        }
        tern_group_destroy(group);
        tern_disconnect(client);
        return 1;
      }
    }
  }
  std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
  f << "ok\n" << results;
  f.close();
  tern_group_destroy(group);
  tern_disconnect(client);
  return 0;
}
