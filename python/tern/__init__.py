"""tern: hand gradient buffers to the node's ternd, which averages them across the group with a
compressed allreduce (TernGrad and friends). Python face of libtern (libclient/include/tern/tern.h).

    import tern
    client = tern.connect()                       # the node's ternd ($TERN_SOCKET or /run/tern/ternd.sock)
    group = tern.Group.join(client, unique_id, rank=r, nranks=n, local_size=1)
    buf = group.allocate(1 << 20, torch.float32)  # a tensor in memory shared with ternd
    group.allreduce(buf, codec="terngrad", key=7).wait_done(30_000)

For PyTorch DDP see tern.ddp (register_tern_hook). Errors are tern.TernError subclasses carrying
libtern's message ("allreduce 12 of group 3f2a: rank 5 on host node-b left").

The compiled part (_tern) is built by CMake into <build>/python/tern next to copies of these
files; put <build>/python on PYTHONPATH. Importing works without it (tern.ddp's logic can be used
with another backend, e.g. in tests), but connect() then raises ImportError saying so.
"""

import importlib

try:
    _tern = importlib.import_module("._tern", __name__)
except ImportError as _err:  # the pure-Python parts stay usable; connect() explains
    _tern = None
    _import_error = str(_err)

# Codec and dtype names used throughout the Python API; values equal tern.h's enums.
CODECS = {"fp32": 0, "fp16": 1, "bf16": 2, "terngrad": 3, "ternary-ef": 4, "sign-ef": 5}
REDUCE_OPS = {"sum": 0, "mean": 1}

if _tern is not None:
    TernError = _tern.TernError
    InvalidArgumentError = _tern.InvalidArgumentError
    CorruptDataError = _tern.CorruptDataError
    NonFiniteError = _tern.NonFiniteError
    OutOfRangeError = _tern.OutOfRangeError
    UnavailableError = _tern.UnavailableError
    DeadlineError = _tern.DeadlineError
    PeerFailureError = _tern.PeerFailureError
    InternalError = _tern.InternalError
else:  # the same names, raised only by Python code while the compiled module is absent
    class TernError(RuntimeError):
        """Base of tern's errors."""

    InvalidArgumentError = type("InvalidArgumentError", (TernError, ValueError), {})
    CorruptDataError = type("CorruptDataError", (TernError,), {})
    NonFiniteError = type("NonFiniteError", (TernError,), {})
    OutOfRangeError = type("OutOfRangeError", (TernError,), {})
    UnavailableError = type("UnavailableError", (TernError,), {})
    DeadlineError = type("DeadlineError", (TernError, TimeoutError), {})
    PeerFailureError = type("PeerFailureError", (TernError,), {})
    InternalError = type("InternalError", (TernError,), {})


def _require_module():
    if _tern is None:
        raise ImportError("tern: the compiled module tern._tern is not available (" + _import_error + "); build "
                          "target _tern (cmake, needs pybind11-dev and python3-dev) and put <build>/python on "
                          "PYTHONPATH")
    return _tern


def version():
    """libtern's version string, e.g. '0.1.0'."""
    return _require_module().version()


def codec_id(name):
    """tern.h's value for a codec name ('fp32', 'bf16', 'terngrad', 'ternary-ef', 'sign-ef', ...)."""
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown tern codec '{name}' (known: {', '.join(CODECS)})") from None


def connect(socket_path=None):
    """A connection (tern._tern.Client) to the node's ternd: socket_path, else $TERN_SOCKET, else
    /run/tern/ternd.sock. Raises UnavailableError (with the path and the reason) when no ternd listens."""
    return _require_module().Client(socket_path or "")


def _dtype_id(torch_dtype):
    import torch
    ids = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
    if torch_dtype not in ids:
        raise ValueError(f"tern reduces float32, float16 and bfloat16 tensors, not {torch_dtype}")
    return ids[torch_dtype]


class Request:
    """A submitted allreduce (wraps tern._tern.Request; holds the tensor until freed)."""

    def __init__(self, request):
        self._request = request

    def test(self):
        """True when done, False while pending; raises the operation's error."""
        return self._request.test()

    def wait(self, timeout_ms):
        """Waits up to timeout_ms (< 0: the operation's own deadline). True when done, False when still
        pending after timeout_ms; raises the operation's error."""
        return self._request.wait(int(timeout_ms))

    def wait_done(self, timeout_ms):
        """wait() that raises DeadlineError when still pending after timeout_ms."""
        if not self.wait(timeout_ms):
            raise DeadlineError(f"tern allreduce still pending after {timeout_ms} ms")

    @property
    def error(self):
        return self._request.error

    def free(self):
        self._request.free()


class Group:
    """This trainer's membership in a tern group, with torch-tensor helpers.

    Thread safety: like libtern, any method from any thread; a tensor passed to allreduce must not
    be touched until its request completed.
    """

    def __init__(self, client, group):
        self.client = client
        self._group = group
        self._registered = {}  # data_ptr -> tensor, CUDA staging registered with tern

    @classmethod
    def join(cls, client, unique_id, rank, nranks, local_size=1, timeout_ms=0, seed=0):
        """Joins the group `unique_id` (text from get_unique_id on one trainer); blocks until every
        trainer joined or timeout_ms (0: the daemon's default) passed."""
        return cls(client, client.join(unique_id, int(rank), int(nranks), int(local_size), int(timeout_ms),
                                       int(seed)))

    @property
    def rank(self):
        return self._group.rank

    @property
    def size(self):
        return self._group.size

    def allocate(self, numel, dtype, device="cpu"):
        """A 1-D tensor of `numel` elements that allreduce() can use in place: on the CPU, memory
        shared with ternd (zero copy); on a CUDA device, a device tensor registered with tern (passed
        to ternd as a CUDA IPC handle). Release it with release()."""
        import torch
        device = torch.device(device)
        itemsize = torch.empty((), dtype=dtype).element_size()
        nbytes = max(int(numel), 1) * itemsize
        if device.type == "cpu":
            buf = self.client.alloc(nbytes)  # torch.frombuffer keeps buf (and so the memory) alive
            return torch.frombuffer(buf, dtype=torch.uint8).view(dtype)[:numel]
        if device.type == "cuda":
            t = torch.empty(max(int(numel), 1), dtype=dtype, device=device)
            self.client.register(t.data_ptr(), nbytes)
            self._registered[t.data_ptr()] = t
            return t[:numel]
        raise ValueError(f"tern: unsupported device {device}")

    def release(self, tensor):
        """Gives back a tensor from allocate() (CUDA: deregisters it; CPU: freed with its last view)."""
        if tensor.is_cuda and self._registered.pop(tensor.data_ptr(), None) is not None:
            self.client.deregister(tensor.data_ptr())

    def allreduce(self, tensor, codec="terngrad", gather_codec=None, key=0, op="mean", timeout_ms=0):
        """Submits an in-place allreduce of `tensor` (contiguous, from allocate() or registered) and
        returns a Request at once. Every trainer must submit the same (numel, dtype, op, codecs, key)
        in the same order. codec is the reduce-scatter direction's, gather_codec the allgather's
        (default: the same); key selects the error-feedback residuals (ternary-ef, sign-ef)."""
        if not tensor.is_contiguous():
            raise ValueError("tern allreduce needs a contiguous tensor")
        req = self._group.allreduce(tensor.data_ptr(), tensor.numel(), _tern.DType(_dtype_id(tensor.dtype)),
                                    _tern.ReduceOp(REDUCE_OPS[op]), _tern.Codec(codec_id(codec)),
                                    _tern.Codec(codec_id(gather_codec or codec)), int(key), int(timeout_ms),
                                    tensor)
        return Request(req)

    def close(self):
        """Leaves the group (pending operations of the other members fail, naming this rank) once the
        requests and tensors of this group are gone."""
        for ptr in list(self._registered):
            self.client.deregister(ptr)
        self._registered.clear()
        self._group = None
