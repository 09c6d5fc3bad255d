"""TEST DOUBLE of tern.Group for the DDP hook's plumbing tests (test_ddp_hook.py) only.

It does not reduce anything across processes: each "allreduce" applies a chosen in-place transform
to the tensor on a timer thread (pretending to be the group's average), or fails, or never
completes. The real path (ternd + libtern) is tested in test_module.py and test_training_quality.py.
"""
import threading
import time

import torch


class FakeRequest:
    def __init__(self):
        self._done = threading.Event()
        self._error = None
        self.freed = False

    def complete(self, error=None):
        self._error = error
        self._done.set()

    def test(self):
        return self.wait(0)

    def wait(self, timeout_ms):
        if not self._done.wait(max(timeout_ms, 0) / 1000.0):
            return False
        if self._error is not None:
            raise self._error
        return True

    @property
    def error(self):
        return str(self._error) if self._error else ""

    def free(self):
        self.freed = True


class FakeGroup:
    """Records every call; `transform(tensor)` is applied at completion after `delay_s`.

    fail_with: exception the request reports; hang: the request never completes;
    submit_error: exception allreduce() raises at submission.
    """

    def __init__(self, transform=None, delay_s=0.0, fail_with=None, hang=False, submit_error=None):
        self.rank, self.size = 0, 1
        self.transform = transform or (lambda t: None)
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.hang = hang
        self.submit_error = submit_error
        self.calls = []
        self.requests = []
        self.allocated = []
        self.released = []

    def allocate(self, numel, dtype, device="cpu"):
        t = torch.full((numel,), float("nan"), dtype=dtype, device=device)  # garbage until written
        self.allocated.append(t)
        return t

    def release(self, tensor):
        self.released.append(tensor)

    def allreduce(self, tensor, codec="terngrad", gather_codec=None, key=0, op="mean", timeout_ms=0):
        if self.submit_error is not None:
            raise self.submit_error
        self.calls.append({"key": key, "numel": tensor.numel(), "dtype": tensor.dtype, "codec": codec,
                           "gather_codec": gather_codec, "op": op, "timeout_ms": timeout_ms,
                           "ptr": tensor.data_ptr(), "thread": threading.current_thread().name})
        req = FakeRequest()
        self.requests.append(req)
        if self.hang:
            return req

        def finish():
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.fail_with is not None:
                req.complete(self.fail_with)
            else:
                self.transform(tensor)
                req.complete()
        threading.Thread(target=finish, daemon=True).start()
        return req
