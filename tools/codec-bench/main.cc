// tern-codec-bench: throughput of every codec relative to memcpy, measured in the same run.
//
// For each (ISA, size, input dtype, codec) the harness runs `reps` rounds; each round times, in
// this order, memcpy of the input buffer, encode, decode_accumulate and (error-feedback codecs)
// residual_update, so that outside load on a noisy machine hits the baseline and the codec alike.
// Medians of the per-round times are reported. Single-threaded; buffers are allocated once per size
// and touched before any timing, so page faults stay out of the numbers.
//
// Not a unit test: it prints a table (and optionally JSON) for people and for the README.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tern/common/aligned_buffer.h"
#include "tern/kernels/codec.h"
#include "tern/kernels/float16.h"

namespace {

using tern::Status;
using tern::kernels::Codec;
using tern::kernels::CpuIsa;
using tern::kernels::DType;
namespace tk = tern::kernels;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kKiB = std::size_t{1} << 10;
constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kGiB = std::size_t{1} << 30;
// Each timed sample repeats its operation ceil(kMinSampleBytes / size) times so that the small,
// cache-resident sizes are not single microsecond-long samples.
constexpr std::size_t kMinSampleBytes = 16 * kMiB;
constexpr std::size_t kMachineMemcpyBytes = 64 * kMiB;
constexpr std::uint64_t kDataSeed = 0x7465726E2D62656EULL;  // "tern-ben"
constexpr float kResidualScale = 0.1f;                       // residual ~ N(0, 0.1²) at the start

constexpr const char* kRatioEncode = "enc/memcpy  = (input bytes / encode time) / (bytes / memcpy time)";
constexpr const char* kRatioDacc =
    "dacc/memcpy = (accumulator bytes / decode-accumulate time) / (bytes / memcpy time)";
constexpr const char* kRatioResid = "resid/memcpy = (residual bytes / residual_update time) / (bytes / memcpy time)";

constexpr const char* kUsage = R"(usage: tern-codec-bench [options]

Throughput of tern's codecs relative to memcpy, single-threaded, measured in the same run.
Each round times memcpy (input buffer -> a same-size buffer), encode, decode_accumulate and, for
ternary-ef / sign-ef, residual_update, in that order; the table reports medians over the rounds.

Definitions (bytes = input buffer bytes = size; memcpy copies exactly those bytes):
  enc_GB/s     = input bytes / median encode time                     (GB = 1e9 bytes)
  enc/memcpy   = (input bytes / encode time) / (bytes / memcpy time)
  dacc_GB/s    = accumulator bytes / median decode_accumulate time    (fp32 accumulator, 4 B/element)
  dacc/memcpy  = (accumulator bytes / decode-accumulate time) / (bytes / memcpy time)
  resid_GB/s   = residual bytes / median residual_update time         (fp32 residual, 4 B/element)
  resid/memcpy = (residual bytes / residual_update time) / (bytes / memcpy time)
  bits/elem    = chunk bytes * 8 / element count (header and block scales included)
  x_fp32       = 32 / bits/elem (compression relative to sending fp32)
All ratios use median times; memcpy_GB/s is the median memcpy of that row's own rounds.
ternary-ef and sign-ef encode with a residual (x = input + residual), as in training; each round then
applies residual_update with the chunk it just produced.

Options:
  --sizes LIST    input sizes in bytes, K/M/G suffixes (powers of 1024); default 1M,4M,16M,64M,256M
  --codecs LIST   fp32,fp16,bf16,terngrad,ternary-ef,sign-ef
  --dtypes LIST   input dtypes: fp32,fp16,bf16
  --all           every codec for every dtype (18 combinations)
  --isa NAME      scalar|avx2|avx512|all; default: the active implementation (best available,
                  or TERN_CPU_ISA)
  --reps N        timed rounds per row (default 5; one untimed warm-up round precedes them)
  --block N       block size for block-scaled codecs (default: tern's kDefaultBlockSize)
  --quick         sizes 1M,16M,64M and 3 rounds (explicit --sizes / --reps still win)
  --json FILE     also write the results as JSON
  --help          this text

Default coverage: all six codecs for fp32 input, and terngrad only for fp16 and bf16 input
(8 combinations per size). --codecs or --dtypes alone take the cross product with every value of
the other list; --all takes every combination.
Data: N(0,1) Gaussian with a fixed seed, widened/narrowed to the input dtype.
Each timed sample repeats its operation ceil(16 MiB / size) times (1 MiB: 16 times, >= 16 MiB: once).
Exit status: 0 on success, 1 on any codec error, 2 on bad arguments.
)";

[[noreturn]] void die(const std::string& message, int code = 1) {
  std::fflush(stdout);
  std::fprintf(stderr, "tern-codec-bench: %s\n", message.c_str());
  std::exit(code);
}

void check(const Status& status, const std::string& what) {
  if (!status.is_ok()) die(what + ": " + status.to_string());
}

// ---------------------------------------------------------------------------------------------
// Buffers

using Buffer = tern::AlignedBuffer;  // 64-byte aligned, uninitialized; throws std::bad_alloc

// Keeps the compiler from dropping a store whose result is never read.
inline void clobber_memory(const void* p) { __asm__ __volatile__("" : : "r"(p) : "memory"); }

void fill_gaussian(std::uint8_t* out, DType dtype, std::size_t count, std::uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  for (std::size_t i = 0; i < count; ++i) {
    const float v = normal(rng);
    switch (dtype) {
      case DType::kF32: std::memcpy(out + 4 * i, &v, 4); break;
      case DType::kF16: {
        const std::uint16_t h = tk::float_to_fp16(v);
        std::memcpy(out + 2 * i, &h, 2);
        break;
      }
      case DType::kBf16: {
        const std::uint16_t h = tk::float_to_bf16(v);
        std::memcpy(out + 2 * i, &h, 2);
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Options

struct Combo {
  Codec codec;
  DType dtype;
};

struct Options {
  std::vector<std::size_t> sizes;
  std::vector<Combo> combos;
  std::vector<CpuIsa> isas;
  int reps = 5;
  std::uint32_t block_size = tk::kDefaultBlockSize;
  std::string json_path;
  std::string coverage;
};

std::vector<std::string> split(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = list.find(',', start);
    const std::size_t end = comma == std::string_view::npos ? list.size() : comma;
    if (end > start) out.emplace_back(list.substr(start, end - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::size_t parse_size(const std::string& text) {
  if (text.empty()) die("empty size", 2);
  std::size_t pos = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &pos);
  } catch (...) {
    die("bad size '" + text + "'", 2);
  }
  std::size_t unit = 1;
  const std::string suffix = text.substr(pos);
  if (suffix == "K" || suffix == "k" || suffix == "KiB") unit = kKiB;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB") unit = kMiB;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") unit = kGiB;
  else if (!suffix.empty() && suffix != "B") die("bad size suffix in '" + text + "' (use K, M or G)", 2);
  if (value == 0) die("size must be positive: '" + text + "'", 2);
  return static_cast<std::size_t>(value) * unit;
}

long parse_int(const std::string& text, const char* what, long lo, long hi) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi)
    die(std::string("bad ") + what + " '" + text + "' (expected " + std::to_string(lo) + ".." + std::to_string(hi) + ")",
        2);
  return v;
}

std::string format_size(std::size_t bytes) {
  if (bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "G";
  if (bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "M";
  if (bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "K";
  return std::to_string(bytes) + "B";
}

Options parse_args(int argc, char** argv) {
  Options opt;
  std::vector<Codec> codecs;
  std::vector<DType> dtypes;
  bool all = false, quick = false, sizes_set = false, reps_set = false;
  std::string isa_name;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("option " + arg + " needs a value", 2);
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--sizes") {
      opt.sizes.clear();
      for (const auto& s : split(value())) opt.sizes.push_back(parse_size(s));
      if (opt.sizes.empty()) die("--sizes needs at least one size", 2);
      sizes_set = true;
    } else if (arg == "--codecs") {
      for (const auto& s : split(value())) {
        auto c = tk::parse_codec(s);
        if (!c) die(c.status().message(), 2);
        codecs.push_back(*c);
      }
    } else if (arg == "--dtypes") {
      for (const auto& s : split(value())) {
        auto d = tk::parse_dtype(s);
        if (!d) die(d.status().message(), 2);
        dtypes.push_back(*d);
      }
    } else if (arg == "--all") {
      all = true;
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--isa") {
      isa_name = value();
    } else if (arg == "--reps") {
      opt.reps = static_cast<int>(parse_int(value(), "--reps", 1, 1000));
      reps_set = true;
    } else if (arg == "--block") {
      opt.block_size = static_cast<std::uint32_t>(parse_int(value(), "--block", tk::kMinBlockSize, tk::kMaxBlockSize));
    } else if (arg == "--json") {
      opt.json_path = value();
    } else {
      die("unknown option '" + arg + "' (see --help)", 2);
    }
  }

  if (!sizes_set) {
    opt.sizes = quick ? std::vector<std::size_t>{1 * kMiB, 16 * kMiB, 64 * kMiB}
                      : std::vector<std::size_t>{1 * kMiB, 4 * kMiB, 16 * kMiB, 64 * kMiB, 256 * kMiB};
  }
  if (quick && !reps_set) opt.reps = 3;

  const std::vector<Codec> all_codecs = {Codec::kFp32,     Codec::kFp16,      Codec::kBf16,
                                         Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf};
  const std::vector<DType> all_dtypes = {DType::kF32, DType::kF16, DType::kBf16};
  if (all || !codecs.empty() || !dtypes.empty()) {
    if (codecs.empty()) codecs = all_codecs;
    if (dtypes.empty()) dtypes = all_dtypes;
    for (DType d : dtypes)
      for (Codec c : codecs) opt.combos.push_back({c, d});
    opt.coverage = all && codecs.size() == all_codecs.size() && dtypes.size() == all_dtypes.size()
                       ? "all codecs x all dtypes"
                       : "selected codecs x selected dtypes";
  } else {
    for (Codec c : all_codecs) opt.combos.push_back({c, DType::kF32});
    opt.combos.push_back({Codec::kTernGrad, DType::kF16});
    opt.combos.push_back({Codec::kTernGrad, DType::kBf16});
    opt.coverage = "default: all codecs for fp32 input, terngrad for fp16/bf16 input (--all for everything)";
  }

  {
    tk::EncodeOptions eo;
    eo.codec = Codec::kTernGrad;
    eo.block_size = opt.block_size;
    const Status s = tk::validate(eo);
    if (!s.is_ok()) die("--block: " + s.message(), 2);
  }

  for (std::size_t size : opt.sizes) {
    for (const Combo& c : opt.combos) {
      const std::size_t esize = tk::dtype_size(c.dtype);
      if (size % esize != 0)
        die("size " + std::to_string(size) + " is not a multiple of the " + std::string(tk::dtype_name(c.dtype)) +
                " element size",
            2);
      if (size / esize > tk::kMaxChunkElements)
        die("size " + format_size(size) + " holds more than kMaxChunkElements " +
                std::string(tk::dtype_name(c.dtype)) + " elements",
            2);
    }
  }

  const std::vector<CpuIsa> supported = tk::supported_cpu_isas();
  if (isa_name.empty()) {
    opt.isas = {tk::active_cpu_isa()};
  } else if (isa_name == "all") {
    opt.isas = supported;
  } else {
    bool found = false;
    for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
      if (tk::cpu_isa_name(isa) != isa_name) continue;
      found = true;
      if (std::find(supported.begin(), supported.end(), isa) == supported.end())
        die("--isa " + isa_name + ": " + tk::set_cpu_isa(isa).to_string(), 2);
      opt.isas = {isa};
    }
    if (!found) die("bad --isa '" + isa_name + "' (expected scalar, avx2, avx512 or all)", 2);
  }
  return opt;
}

// ---------------------------------------------------------------------------------------------
// Measurement

std::string loadavg() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "unavailable";
  char line[256] = {};
  const bool ok = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  if (!ok) return "unavailable";
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median memcpy throughput (bytes/s) of a standalone buffer, for the machine line.
double machine_memcpy_bps(int reps) {
  Buffer src(kMachineMemcpyBytes), dst(kMachineMemcpyBytes);
  std::memset(src.data(), 0x5A, src.size());
  std::memset(dst.data(), 0, dst.size());
  std::vector<double> times;
  for (int r = -1; r < reps; ++r) {
    const auto t0 = Clock::now();
    std::memcpy(dst.data(), src.data(), src.size());
    clobber_memory(dst.data());
    const double t = seconds_since(t0);
    if (r >= 0) times.push_back(t);
  }
  return static_cast<double>(kMachineMemcpyBytes) / median(times);
}

struct Row {
  std::string isa;
  Codec codec;
  DType dtype;
  std::size_t size_bytes = 0;
  std::size_t count = 0;
  std::size_t chunk_bytes = 0;
  int reps = 0;
  int inner = 0;
  double memcpy_s = 0, encode_s = 0, dacc_s = 0, resid_s = 0;  // medians, per single operation
  bool has_resid = false;
  double memcpy_bps() const { return static_cast<double>(size_bytes) / memcpy_s; }
  double encode_bps() const { return static_cast<double>(size_bytes) / encode_s; }
  double dacc_bps() const { return 4.0 * static_cast<double>(count) / dacc_s; }
  double resid_bps() const { return 4.0 * static_cast<double>(count) / resid_s; }
  double bits_per_element() const { return 8.0 * static_cast<double>(chunk_bytes) / static_cast<double>(count); }
};

struct SizeBuffers {
  Buffer input, copy, acc, residual, chunk;
};

Row run_combo(const Options& opt, CpuIsa isa, std::size_t size, const Combo& combo, SizeBuffers& buf) {
  Row row;
  row.isa = std::string(tk::cpu_isa_name(isa));
  row.codec = combo.codec;
  row.dtype = combo.dtype;
  row.size_bytes = size;
  row.count = size / tk::dtype_size(combo.dtype);
  row.reps = opt.reps;
  row.inner = static_cast<int>((kMinSampleBytes + size - 1) / size);
  row.has_resid = tk::codec_uses_error_feedback(combo.codec);

  const std::string what = std::string(tk::codec_name(combo.codec)) + " " + std::string(tk::dtype_name(combo.dtype)) +
                           " " + format_size(size) + " (" + row.isa + ")";
  tk::EncodeOptions eo;
  eo.codec = combo.codec;
  eo.block_size = opt.block_size;
  eo.seed = 0x5EED;
  eo.stream = 0;
  auto esize = tk::encoded_size(combo.codec, opt.block_size, row.count);
  if (!esize) die(what + ": encoded_size: " + esize.status().to_string());
  row.chunk_bytes = *esize;
  if (row.chunk_bytes > buf.chunk.size()) die(what + ": internal error: chunk buffer too small");
  const std::span<std::uint8_t> out(buf.chunk.data(), row.chunk_bytes);
  const std::span<const std::uint8_t> chunk(buf.chunk.data(), row.chunk_bytes);
  float* residual = row.has_resid ? buf.residual.floats() : nullptr;
  float* acc = buf.acc.floats();

  // Fresh accumulator (zeros) and residual (small Gaussian) for every row; not timed.
  std::memset(acc, 0, 4 * row.count);
  if (residual) fill_gaussian(buf.residual.data(), DType::kF32, row.count, kDataSeed + 1, kResidualScale);

  std::vector<double> t_copy, t_enc, t_dacc, t_resid;
  for (int r = -1; r < opt.reps; ++r) {  // r = -1: warm-up round, not recorded
    auto t0 = Clock::now();
    for (int k = 0; k < row.inner; ++k) {
      std::memcpy(buf.copy.data(), buf.input.data(), size);
      clobber_memory(buf.copy.data());
    }
    const double copy_s = seconds_since(t0);

    t0 = Clock::now();
    for (int k = 0; k < row.inner; ++k) {
      tk::EncodeReport report;
      const Status s = tk::encode(buf.input.data(), combo.dtype, row.count, residual, eo, out, &report);
      if (!s.is_ok()) die(what + ": encode: " + s.to_string());
      if (report.bytes != row.chunk_bytes) die(what + ": encode wrote an unexpected number of bytes");
    }
    const double enc_s = seconds_since(t0);

    t0 = Clock::now();
    for (int k = 0; k < row.inner; ++k) check(tk::decode_accumulate(chunk, acc, row.count), what + ": decode_accumulate");
    const double dacc_s = seconds_since(t0);

    double res_s = 0;
    if (residual) {
      t0 = Clock::now();
      for (int k = 0; k < row.inner; ++k)
        check(tk::residual_update(chunk, buf.input.data(), combo.dtype, row.count, residual), what + ": residual_update");
      res_s = seconds_since(t0);
    }
    if (r < 0) continue;
    const double n = row.inner;
    t_copy.push_back(copy_s / n);
    t_enc.push_back(enc_s / n);
    t_dacc.push_back(dacc_s / n);
    if (residual) t_resid.push_back(res_s / n);
  }
  row.memcpy_s = median(t_copy);
  row.encode_s = median(t_enc);
  row.dacc_s = median(t_dacc);
  if (residual) row.resid_s = median(t_resid);

  // The accumulator must hold finite values (a sanity check that the work was really done).
  for (std::size_t i = 0; i < row.count; i += 4099)
    if (!std::isfinite(acc[i])) die(what + ": accumulator holds a non-finite value");
  return row;
}

constexpr const char* kHeaderFmt = "%-10s %-5s %5s %11s %9s %10s %9s %11s %10s %12s %9s %6s %-6s\n";
constexpr const char* kRowFmt = "%-10s %-5s %5s %11.2f %9.2f %10.3f %9.2f %11.3f %10s %12s %9.3f %6.2f %-6s\n";

void print_header() {
  std::printf(kHeaderFmt, "codec", "dtype", "size", "memcpy_GB/s", "enc_GB/s", "enc/memcpy", "dacc_GB/s", "dacc/memcpy",
              "resid_GB/s", "resid/memcpy", "bits/elem", "x_fp32", "isa");
}

void print_row(const Row& r) {
  char resid_gbs[32] = "-", resid_ratio[32] = "-";
  if (r.has_resid) {
    std::snprintf(resid_gbs, sizeof resid_gbs, "%.2f", r.resid_bps() / 1e9);
    std::snprintf(resid_ratio, sizeof resid_ratio, "%.3f", r.resid_bps() / r.memcpy_bps());
  }
  const std::string codec(tk::codec_name(r.codec)), dtype(tk::dtype_name(r.dtype));
  std::printf(kRowFmt, codec.c_str(), dtype.c_str(), format_size(r.size_bytes).c_str(), r.memcpy_bps() / 1e9,
              r.encode_bps() / 1e9, r.encode_bps() / r.memcpy_bps(), r.dacc_bps() / 1e9, r.dacc_bps() / r.memcpy_bps(),
              resid_gbs, resid_ratio, r.bits_per_element(), 32.0 / r.bits_per_element(), r.isa.c_str());
  std::fflush(stdout);
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += esc;
    } else {
      out += c;
    }
  }
  return out;
}

void write_json(const Options& opt, const std::vector<Row>& rows, const std::string& load_start,
                const std::string& load_end, double memcpy_start, double memcpy_end) {
  std::FILE* f = std::fopen(opt.json_path.c_str(), "w");
  if (!f) die("cannot open " + opt.json_path + " for writing", 1);
  std::fprintf(f, "{\n  \"tool\": \"tern-codec-bench\",\n");
  std::fprintf(f, "  \"definitions\": {\"encode_ratio\": \"%s\", \"dacc_ratio\": \"%s\", \"resid_ratio\": \"%s\"},\n",
               json_escape(kRatioEncode).c_str(), json_escape(kRatioDacc).c_str(), json_escape(kRatioResid).c_str());
  std::fprintf(f, "  \"coverage\": \"%s\",\n  \"reps\": %d,\n  \"block_size\": %u,\n", json_escape(opt.coverage).c_str(),
               opt.reps, opt.block_size);
  std::fprintf(f, "  \"loadavg_start\": \"%s\",\n  \"loadavg_end\": \"%s\",\n", json_escape(load_start).c_str(),
               json_escape(load_end).c_str());
  std::fprintf(f, "  \"machine_memcpy_GBps_start\": %.4f,\n  \"machine_memcpy_GBps_end\": %.4f,\n", memcpy_start / 1e9,
               memcpy_end / 1e9);
  std::fprintf(f, "  \"results\": [\n");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::fprintf(f,
                 "    {\"isa\": \"%s\", \"codec\": \"%s\", \"dtype\": \"%s\", \"size_bytes\": %zu, \"elements\": %zu, "
                 "\"chunk_bytes\": %zu, \"bits_per_element\": %.6f, \"compression_vs_fp32\": %.6f, \"reps\": %d, "
                 "\"inner\": %d, \"memcpy_s\": %.9g, \"encode_s\": %.9g, \"dacc_s\": %.9g, \"memcpy_GBps\": %.6f, "
                 "\"encode_GBps\": %.6f, \"encode_ratio\": %.6f, \"dacc_GBps\": %.6f, \"dacc_ratio\": %.6f",
                 r.isa.c_str(), std::string(tk::codec_name(r.codec)).c_str(),
                 std::string(tk::dtype_name(r.dtype)).c_str(), r.size_bytes, r.count, r.chunk_bytes,
                 r.bits_per_element(), 32.0 / r.bits_per_element(), r.reps, r.inner, r.memcpy_s, r.encode_s, r.dacc_s,
                 r.memcpy_bps() / 1e9, r.encode_bps() / 1e9, r.encode_bps() / r.memcpy_bps(), r.dacc_bps() / 1e9,
                 r.dacc_bps() / r.memcpy_bps());
    if (r.has_resid)
      std::fprintf(f, ", \"resid_s\": %.9g, \"resid_GBps\": %.6f, \"resid_ratio\": %.6f", r.resid_s,
                   r.resid_bps() / 1e9, r.resid_bps() / r.memcpy_bps());
    std::fprintf(f, "}%s\n", i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  if (std::fclose(f) != 0) die("error writing " + opt.json_path, 1);
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  const CpuIsa initial_isa = tk::active_cpu_isa();

  std::string supported;
  for (CpuIsa isa : tk::supported_cpu_isas()) supported += (supported.empty() ? "" : ",") + std::string(tk::cpu_isa_name(isa));
  std::string selected;
  for (CpuIsa isa : opt.isas) selected += (selected.empty() ? "" : ",") + std::string(tk::cpu_isa_name(isa));
  std::string sizes;
  for (std::size_t s : opt.sizes) sizes += (sizes.empty() ? "" : ",") + format_size(s);

  const std::string load_start = loadavg();
  const double memcpy_start = machine_memcpy_bps(5);
  std::printf("# tern-codec-bench: single-threaded codec throughput vs memcpy (medians of %d rounds)\n", opt.reps);
  std::printf("# loadavg at start: %s\n", load_start.c_str());
  std::printf("# machine memcpy (64 MiB, median of 5) at start: %.2f GB/s\n", memcpy_start / 1e9);
  std::printf("# cpu isa: active %s; supported by this build+CPU: %s; benchmarked: %s\n",
              std::string(tk::cpu_isa_name(initial_isa)).c_str(), supported.c_str(), selected.c_str());
  std::printf("# coverage: %s; sizes %s; block size %u; data N(0,1), fixed seed\n", opt.coverage.c_str(),
              sizes.c_str(), opt.block_size);
  std::printf("# %s\n# %s\n# %s\n", kRatioEncode, kRatioDacc, kRatioResid);
  std::printf("# bytes = input buffer bytes (= size); GB = 1e9 B; memcpy_GB/s = the row's own interleaved memcpy;\n");
  std::printf("# bits/elem = chunk bytes*8/count (header+scales included); x_fp32 = 32/bits; resid = residual_update\n");
  std::printf("# each round: memcpy, encode, decode_accumulate[, residual_update]; sample = ceil(16 MiB/size) ops\n");
  print_header();

  std::vector<Row> rows;
  const auto run_start = Clock::now();
  for (CpuIsa isa : opt.isas) {
    check(tk::set_cpu_isa(isa), "set_cpu_isa");
    for (std::size_t size : opt.sizes) {
      // Allocate once per size, at the largest need over the combinations, and touch every page.
      std::size_t max_count = 0, max_resid = 0, max_chunk = 0;
      for (const Combo& c : opt.combos) {
        const std::size_t count = size / tk::dtype_size(c.dtype);
        max_count = std::max(max_count, count);
        if (tk::codec_uses_error_feedback(c.codec)) max_resid = std::max(max_resid, count);
        auto e = tk::encoded_size(c.codec, opt.block_size, count);
        if (!e) die("encoded_size: " + e.status().to_string());
        max_chunk = std::max(max_chunk, *e);
      }
      SizeBuffers buf{Buffer(size), Buffer(size), Buffer(4 * max_count), Buffer(4 * max_resid), Buffer(max_chunk)};
      std::memset(buf.copy.data(), 0, buf.copy.size());
      std::memset(buf.acc.data(), 0, buf.acc.size());
      if (buf.residual.size()) std::memset(buf.residual.data(), 0, buf.residual.size());
      std::memset(buf.chunk.data(), 0, buf.chunk.size());

      DType filled{};
      bool have_data = false;
      for (const Combo& c : opt.combos) {
        if (!have_data || filled != c.dtype) {
          fill_gaussian(buf.input.data(), c.dtype, size / tk::dtype_size(c.dtype), kDataSeed, 1.0f);
          filled = c.dtype;
          have_data = true;
        }
        rows.push_back(run_combo(opt, isa, size, c, buf));
        print_row(rows.back());
      }
    }
  }
  check(tk::set_cpu_isa(initial_isa), "set_cpu_isa");
  const double run_s = seconds_since(run_start);

  const std::string load_end = loadavg();
  const double memcpy_end = machine_memcpy_bps(5);
  std::printf("# loadavg at end: %s\n", load_end.c_str());
  std::printf("# machine memcpy (64 MiB, median of 5) at end: %.2f GB/s\n", memcpy_end / 1e9);
  std::printf("# %zu rows in %.1f s\n", rows.size(), run_s);
  if (!opt.json_path.empty()) {
    write_json(opt, rows, load_start, load_end, memcpy_start, memcpy_end);
    std::printf("# JSON written to %s\n", opt.json_path.c_str());
  }
  return 0;
}
