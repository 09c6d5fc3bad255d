#include "tern/transport/tensor.h"

namespace tern::collective {
namespace {

class HostTensor final : public Tensor {
 public:
  HostTensor(void* data, kernels::DType dtype, std::size_t count)
      : data_(static_cast<std::uint8_t*>(data)), dtype_(dtype), count_(count), elem_(kernels::dtype_size(dtype)) {}

  kernels::DType dtype() const noexcept override { return dtype_; }
  std::size_t count() const noexcept override { return count_; }
  const void* address() const noexcept override { return data_; }

  Status encode(std::size_t begin, std::size_t n, float* residual, const kernels::EncodeOptions& options,
                std::span<std::uint8_t> out) override {
    const std::uint8_t* input = at(begin);
    TERN_CHECK(kernels::encode(input, dtype_, n, residual, options, out));
    if (residual) TERN_CHECK(kernels::residual_update(out, input, dtype_, n, residual));
    return Status::ok();
  }

  Status widen(std::size_t begin, std::size_t n, float* out) override {
    kernels::widen_to_f32(at(begin), dtype_, n, out);
    return Status::ok();
  }

  Status decode(std::span<const std::uint8_t> chunk, std::size_t begin, std::size_t n) override {
    return kernels::decode(chunk, at(begin), dtype_, n);
  }

 private:
  std::uint8_t* at(std::size_t element) const { return data_ + element * elem_; }

  std::uint8_t* data_;
  kernels::DType dtype_;
  std::size_t count_;
  std::size_t elem_;
};

class FailingTensor final : public Tensor {
 public:
  FailingTensor(kernels::DType dtype, std::size_t count, Status reason)
      : dtype_(dtype),
        count_(count),
        reason_(reason.is_ok() ? internal_error("failing_tensor() was given an OK status") : std::move(reason)) {}

  kernels::DType dtype() const noexcept override { return dtype_; }
  std::size_t count() const noexcept override { return count_; }
  const void* address() const noexcept override { return this; }  // never dereferenced

  Status encode(std::size_t, std::size_t, float*, const kernels::EncodeOptions&, std::span<std::uint8_t>) override {
    return reason_;
  }
  Status widen(std::size_t, std::size_t, float*) override { return reason_; }
  Status decode(std::span<const std::uint8_t>, std::size_t, std::size_t) override { return reason_; }

 private:
  kernels::DType dtype_;
  std::size_t count_;
  Status reason_;
};

}  // namespace

std::unique_ptr<Tensor> failing_tensor(kernels::DType dtype, std::size_t count, Status reason) {
  return std::make_unique<FailingTensor>(dtype, count, std::move(reason));
}

std::unique_ptr<Tensor> host_tensor(void* data, kernels::DType dtype, std::size_t count) {
  return std::make_unique<HostTensor>(data, dtype, count);
}

}  // namespace tern::collective
