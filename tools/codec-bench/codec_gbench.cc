// tern-codec-gbench: the operations of tern-codec-bench as Google Benchmark cases, reporting
// bytes_per_second (input bytes for encode and memcpy, fp32 accumulator/residual bytes for
// decode_accumulate and residual_update). Single-threaded, real time. The CPU implementation is the
// active one (best available, or TERN_CPU_ISA=scalar|avx2|avx512). tern-codec-bench is the main
// harness (interleaved memcpy baseline, ratio table); this is the optional gbench flavour.
//
//   tern-codec-gbench --benchmark_filter='BM_encode/3/0'   # terngrad, fp32 input, all sizes
// Arguments: codec (tern::kernels::Codec value), input dtype (DType value), input bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tern/kernels/codec.h"
#include "tern/kernels/float16.h"

namespace {

namespace tk = tern::kernels;
using tk::Codec;
using tk::DType;

constexpr std::int64_t kMinBytes = std::int64_t{1} << 20;
constexpr std::int64_t kMaxBytes = std::int64_t{256} << 20;

std::vector<std::uint8_t> gaussian_input(DType dtype, std::size_t count, std::uint64_t seed) {
  std::vector<std::uint8_t> out(count * tk::dtype_size(dtype));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < count; ++i) {
    const float v = normal(rng);
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &v, 4);
    } else {
      const std::uint16_t h = dtype == DType::kF16 ? tk::float_to_fp16(v) : tk::float_to_bf16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

// Everything one case needs, built and touched before timing.
struct Setup {
  Codec codec;
  DType dtype;
  std::size_t bytes, count;
  std::vector<std::uint8_t> input, chunk;
  std::vector<float> acc, residual;
  tk::EncodeOptions options;
  bool ok = true;

  explicit Setup(benchmark::State& state)
      : codec(static_cast<Codec>(state.range(0))),
        dtype(static_cast<DType>(state.range(1))),
        bytes(static_cast<std::size_t>(state.range(2))),
        count(bytes / tk::dtype_size(dtype)) {
    state.SetLabel(std::string(tk::codec_name(codec)) + "/" + std::string(tk::dtype_name(dtype)));
    options.codec = codec;
    options.seed = 0x5EED;
    input = gaussian_input(dtype, count, 0x7465726E);
    acc.assign(count, 0.0f);
    if (tk::codec_uses_error_feedback(codec)) residual.assign(count, 0.0f);
    auto size = tk::encoded_size(codec, options.block_size, count);
    if (!size) {
      fail(state, size.status());
      return;
    }
    chunk.assign(*size, 0);
    fail_if(state, encode());
  }
  tern::Status encode() {
    return tk::encode(input.data(), dtype, count, residual.empty() ? nullptr : residual.data(), options, chunk);
  }
  void fail(benchmark::State& state, const tern::Status& status) {
    ok = false;
    state.SkipWithError(status.to_string().c_str());
  }
  bool fail_if(benchmark::State& state, const tern::Status& status) {
    if (!status.is_ok()) fail(state, status);
    return !status.is_ok();
  }
};

void BM_memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> src(bytes, 0x5A), dst(bytes, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_encode(benchmark::State& state) {
  Setup s(state);
  if (!s.ok) return;
  for (auto _ : state)
    if (s.fail_if(state, s.encode())) break;
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(s.bytes));
}

void BM_decode_accumulate(benchmark::State& state) {
  Setup s(state);
  if (!s.ok) return;
  for (auto _ : state)
    if (s.fail_if(state, tk::decode_accumulate(s.chunk, s.acc.data(), s.count))) break;
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * s.count));
}

void BM_residual_update(benchmark::State& state) {
  Setup s(state);
  if (!s.ok) return;
  for (auto _ : state)
    if (s.fail_if(state, tk::residual_update(s.chunk, s.input.data(), s.dtype, s.count, s.residual.data()))) break;
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * s.count));
}

std::vector<std::int64_t> sizes() {
  std::vector<std::int64_t> out;
  for (std::int64_t b = kMinBytes; b <= kMaxBytes; b *= 4) out.push_back(b);
  return out;
}

std::vector<std::int64_t> values(int n) {
  std::vector<std::int64_t> out;
  for (int i = 0; i < n; ++i) out.push_back(i);
  return out;
}

}  // namespace

BENCHMARK(BM_memcpy)->RangeMultiplier(4)->Range(kMinBytes, kMaxBytes)->UseRealTime();
BENCHMARK(BM_encode)->ArgsProduct({values(tk::kCodecCount), values(3), sizes()})->UseRealTime();
BENCHMARK(BM_decode_accumulate)->ArgsProduct({values(tk::kCodecCount), values(3), sizes()})->UseRealTime();
BENCHMARK(BM_residual_update)
    ->ArgsProduct({{static_cast<std::int64_t>(Codec::kTernaryEf), static_cast<std::int64_t>(Codec::kSignEf)},
                   values(3), sizes()})
    ->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("tern_cpu_isa", std::string(tk::cpu_isa_name(tk::active_cpu_isa())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
