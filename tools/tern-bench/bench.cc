#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "tern/common/aligned_buffer.h"
#include "tern/kernels/float16.h"
#include "tern/kernels/philox.h"
#include "tern/transport/collective_reference.h"

namespace tern::bench {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

std::string redop_name(collective::ReduceOp op) { return op == collective::ReduceOp::kSum ? "sum" : "mean"; }


}  // namespace

std::vector<std::uint8_t> make_input(int rank, std::size_t count, kernels::DType dtype) {
  std::vector<std::uint8_t> out(count * kernels::dtype_size(dtype));
  for (std::size_t i = 0; i < count; ++i) {
    const float v = (kernels::uniform24(kernels::philox_word(static_cast<std::uint64_t>(rank), count, i)) - 0.5f) * 4.0f;
    if (dtype == kernels::DType::kF32) {
      std::memcpy(out.data() + 4 * i, &v, 4);
    } else {
      const std::uint16_t h = dtype == kernels::DType::kF16 ? kernels::float_to_fp16(v) : kernels::float_to_bf16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

Result<std::vector<BenchRow>> run_sweep(collective::Communicator& comm, const BenchConfig& config) {
  std::vector<BenchRow> rows;
  const std::size_t elem = kernels::dtype_size(config.dtype);
  const int ranks = comm.size();
  std::uint64_t check_key = 1u << 30;
  for (kernels::Codec codec : config.codecs) {
    std::vector<std::size_t> sizes = config.sizes;
    if (sizes.empty())
      for (std::size_t bytes = std::max(config.min_bytes, elem); bytes <= config.max_bytes;
           bytes = std::max(bytes * config.step_factor, bytes + elem))
        sizes.push_back(bytes);
    for (std::size_t bytes : sizes) {
      const std::size_t count = bytes / elem;
      collective::AllreduceOptions o;
      o.dtype = config.dtype;
      o.scatter_codec = codec;
      o.gather_codec = config.gather_same_as_scatter ? codec : config.gather_codec;
      o.op = config.op;
      o.block_size = config.block_size;
      o.timeout = config.timeout;
      o.tensor_key = count;  // error-feedback residuals are per tensor: one per size
      const auto input = make_input(comm.rank(), count, config.dtype);
      // Aligned like a framework's tensor, so the engine takes the paths a trainer's gradients take
      // (e.g. the decoders' non-temporal stores).
      AlignedBuffer buffer(input.size());
      std::vector<double> times;
      collective::AllreduceStats stats;
      for (int it = 0; it < config.warmup + config.iters; ++it) {
        std::memcpy(buffer.data(), input.data(), input.size());
        const auto t0 = Clock::now();
        TERN_CHECK(comm.allreduce(buffer.data(), count, o, &stats)
                       .with_context(std::to_string(bytes) + " B " + std::string(kernels::codec_name(codec))));
        if (it >= config.warmup) times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      BenchRow row;
      row.bytes = count * elem;
      row.count = count;
      row.codec = std::string(kernels::codec_name(codec));
      if (!config.gather_same_as_scatter) row.codec += "/" + std::string(kernels::codec_name(o.gather_codec));
      row.dtype = std::string(kernels::dtype_name(config.dtype));
      row.redop = redop_name(config.op);
      row.time_us = median(times);
      double sum = 0;
      for (double t : times) sum += t;
      row.time_us_mean = times.empty() ? 0 : sum / static_cast<double>(times.size());
      row.algbw = row.time_us > 0 ? static_cast<double>(row.bytes) / (row.time_us * 1e-6) / 1e9 : 0;
      row.busbw = row.algbw * 2.0 * (ranks - 1) / ranks;
      row.wire_bytes = stats.bytes_sent;
      // What an uncompressed reduce-scatter + allgather would send: 2(n-1)/n of the fp32 tensor.
      const double fp32_wire = static_cast<double>(count) * 4.0 * 2.0 * (ranks - 1) / ranks;
      row.x_fp32 = stats.bytes_sent ? fp32_wire / static_cast<double>(stats.bytes_sent) : 0.0;
      if (config.check) {
        // A fresh tensor key: error-feedback residuals start at zero, as in the reference.
        o.tensor_key = check_key++;
        std::memcpy(buffer.data(), input.data(), input.size());
        const std::uint64_t checked_op = comm.next_operation();
        TERN_CHECK(comm.allreduce(buffer.data(), count, o).with_context("check"));
        std::vector<std::vector<std::uint8_t>> inputs;
        for (int r = 0; r < ranks; ++r) inputs.push_back(make_input(r, count, config.dtype));
        TERN_ASSIGN_OR_RETURN(auto expected, collective::reference_allreduce(inputs, count, o, comm.options(), checked_op));
        row.wrong = 0;
        for (std::size_t i = 0; i < count; ++i)
          if (std::memcmp(expected.data() + i * elem, buffer.data() + i * elem, elem) != 0) ++row.wrong;
      }
      rows.push_back(row);
      if (comm.rank() == 0) print_row(row);
    }
  }
  return rows;
}

void print_header(const BenchConfig& config, int ranks, const std::string& transport) {
  std::printf("# tern-bench: allreduce, %d ranks, transport: %s\n", ranks, transport.c_str());
  std::printf("# warmup %d, iters %d, block %u, check %s; time = median per operation\n", config.warmup, config.iters,
              config.block_size, config.check ? "on" : "off");
  std::printf("# algbw = size / time, busbw = algbw * 2(n-1)/n (nccl-tests), GB = 1e9 B; wire = bytes one rank sent\n");
  std::printf("%12s %12s %6s %12s %5s %11s %10s %10s %12s %7s %7s\n", "size(B)", "count", "type", "codec", "redop",
              "time(us)", "algbw", "busbw", "wire(B)", "x_fp32", "#wrong");
  std::fflush(stdout);
}

void print_row(const BenchRow& r) {
  std::printf("%12zu %12zu %6s %12s %5s %11.1f %10.4f %10.4f %12llu %7.2f %7s\n", r.bytes, r.count, r.dtype.c_str(),
              r.codec.c_str(), r.redop.c_str(), r.time_us, r.algbw, r.busbw, static_cast<unsigned long long>(r.wire_bytes),
              r.x_fp32,
              r.wrong < 0 ? "N/A" : std::to_string(r.wrong).c_str());
  std::fflush(stdout);
}

Status write_json(const std::string& path, const BenchConfig& config, int ranks, const std::string& transport,
                  const std::vector<BenchRow>& rows) {
  std::ofstream out(path);
  if (!out) return invalid_argument("cannot write " + path);
  out << "{\n  \"tool\": \"tern-bench\", \"collective\": \"allreduce\", \"ranks\": " << ranks << ", \"transport\": \""
      << transport << "\", \"warmup\": " << config.warmup << ", \"iters\": " << config.iters << ",\n  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const BenchRow& r = rows[i];
    out << "    {\"bytes\": " << r.bytes << ", \"count\": " << r.count << ", \"dtype\": \"" << r.dtype
        << "\", \"codec\": \"" << r.codec << "\", \"redop\": \"" << r.redop << "\", \"time_us\": " << r.time_us
        << ", \"time_us_mean\": " << r.time_us_mean << ", \"algbw_GBps\": " << r.algbw << ", \"busbw_GBps\": " << r.busbw
        << ", \"wire_bytes\": " << r.wire_bytes << ", \"x_fp32\": " << r.x_fp32 << ", \"wrong\": " << r.wrong << "}" << (i + 1 < rows.size() ? "," : "")
        << "\n";
  }
  out << "  ]\n}\n";
  return out ? Status::ok() : invalid_argument("error writing " + path);
}

}  // namespace tern::bench
