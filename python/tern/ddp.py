"""PyTorch DistributedDataParallel communication hook that averages gradient buckets through tern.

    import torch.distributed as dist, tern.ddp
    dist.init_process_group("gloo", ...)              # still used for DDP's start-up broadcast
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    group = tern.ddp.join_group(rank, world, local_size)   # unique id shared via dist's store
    state = tern.ddp.register_tern_hook(ddp, group, codec="terngrad")
    ... train ...
    state.close()

What the hook does with each GradBucket DDP hands it (DDP calls it from the autograd thread as
buckets fill up during backward):
  1. copies the bucket's flat gradient tensor into a staging tensor that ternd can reach (per
     bucket index; memory shared with ternd on the CPU, a registered device tensor on a GPU),
  2. submits an in-place allreduce, op=mean (sum / number of trainers), key = the bucket index
     (plus a generation in the high 32 bits when DDP rebuilds its buckets: error-feedback
     residuals never mix two layouts), and returns a torch.futures.Future at once,
  3. a completion thread waits for the requests in submission order (libtern completes them in
     that order) and sets each future to the averaged staging tensor, or to the error (a
     TernError with libtern's message, or DeadlineError after timeout_ms + grace). DDP copies the
     result into the parameters' .grad at the end of backward, which re-raises an error.
"""
import queue
import threading
import time

import torch

import tern

# Extra time the completion thread waits beyond the operation's own deadline (which ternd enforces)
# before it gives up on a request that never reports back.
COMPLETION_GRACE_S = 10.0


class ExchangeClock:
    """Time spent in gradient exchange per step: from the first bucket handed over in a step to the
    last bucket's completion (the exchange may overlap the rest of backward)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._first = None
        self._last = None

    def bucket_started(self):
        with self._lock:
            if self._first is None:
                self._first = time.perf_counter()

    def bucket_done(self):
        with self._lock:
            self._last = time.perf_counter()

    def take(self):
        """Seconds of the step's window (0 if no bucket finished); resets for the next step."""
        with self._lock:
            first, last = self._first, self._last
            self._first = self._last = None
        if first is None or last is None:
            return 0.0
        return max(last - first, 0.0)


def _default_store():
    import torch.distributed as dist
    from torch.distributed import distributed_c10d
    if not dist.is_initialized():
        raise RuntimeError("tern.ddp.join_group: torch.distributed is not initialized; call "
                           "init_process_group first, or pass store= or unique_id=")
    return distributed_c10d._get_default_store()


def join_group(rank, nranks, local_size=1, socket_path=None, store=None, unique_id=None,
               store_key="tern/unique_id", timeout_ms=0, seed=0):
    """Connects to the node's ternd and joins a group of `nranks` trainers.

    The unique id (a credential: it holds the group secret) comes from `unique_id`, else
    $TERN_UNIQUE_ID, else rank 0 makes one and publishes it under `store_key` in `store` (default:
    the store torch.distributed's init_process_group created); the others read it from there
    (the store's timeout bounds the wait). Trainers on one node must hold consecutive ranks.
    Returns a tern.Group.
    """
    import os
    client = tern.connect(socket_path)
    uid = unique_id or os.environ.get("TERN_UNIQUE_ID") or None
    if uid is None:
        store = store if store is not None else _default_store()
        if rank == 0:
            uid = client.get_unique_id()
            store.set(store_key, uid)
        else:
            uid = store.get(store_key).decode()
    return tern.Group.join(client, uid, rank=rank, nranks=nranks, local_size=local_size, timeout_ms=timeout_ms,
                           seed=seed)


def with_context(error, what):
    """The same kind of exception with `what` in front of its message (tern's status attributes kept)."""
    try:
        e = type(error)(f"{what}: {error}")
    except Exception:
        return error
    for attr in ("status", "status_name"):
        if hasattr(error, attr):
            setattr(e, attr, getattr(error, attr))
    return e


class _Completer:
    """One thread that waits for requests in submission order and settles their futures."""

    def __init__(self, name="tern-ddp-completion"):
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.abandoned = []  # requests that never reported back: not freed (freeing would block)

    def add(self, request, future, finish, deadline_s, what):
        self._queue.put((request, future, finish, deadline_s, what))

    def close(self, timeout_s=30.0):
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise tern.DeadlineError(f"tern.ddp: the completion thread did not stop within {timeout_s} s")

    def _run(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            request, future, finish, deadline_s, what = item
            try:
                self._wait(request, deadline_s, what)
            except BaseException as e:  # every failure goes to DDP through the future
                future.set_exception(e)
                continue
            # Freed before the future settles: whoever the future wakes (backward(), close()) must
            # find the request already given back.
            request.free()
            try:
                future.set_result(finish())
            except BaseException as e:
                future.set_exception(e)

    def _wait(self, request, deadline_s, what):
        # Short waits, so that a request that never completes is noticed at its deadline.
        while True:
            remaining = deadline_s - time.monotonic()
            if remaining <= 0:
                self.abandoned.append(request)
                raise tern.DeadlineError(f"{what}: no completion within its deadline plus "
                                         f"{COMPLETION_GRACE_S:.0f} s (ternd unresponsive?)")
            try:
                if request.wait(int(min(remaining, 1.0) * 1000) + 1):
                    return
            except tern.TernError as e:
                request.free()
                raise with_context(e, what) from e


class TernHookState:
    """The hook's state: the group, codecs, staging tensors per bucket, the completion thread and
    the exchange clock. Made by register_tern_hook; close() when training ends.

    `corrupt` is a TEST-ONLY fault injection ('zero': the averaged gradient's scale is lost, 'flip':
    its sign flips) with which the training-quality test proves it detects a broken codec.
    """

    def __init__(self, group, codec="terngrad", gather_codec=None, timeout_ms=30_000, corrupt="none"):
        tern.codec_id(codec)
        tern.codec_id(gather_codec or codec)
        if corrupt not in ("none", "zero", "flip"):
            raise ValueError(f"corrupt must be 'none', 'zero' or 'flip', not '{corrupt}'")
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be > 0 (every wait has a deadline)")
        self.group = group
        self.codec = codec
        self.gather_codec = gather_codec or codec
        self.timeout_ms = int(timeout_ms)
        self.corrupt = corrupt
        self.clock = ExchangeClock()
        self.buckets_submitted = 0
        self.bytes_submitted = 0
        self._staging = {}  # bucket index -> (tensor, generation)
        self._completer = _Completer()
        self._closed = False

    def key_of(self, index, generation):
        """The tern tensor key of bucket `index` in layout `generation`."""
        return (generation << 32) | index

    def _staging_for(self, index, grad):
        entry = self._staging.get(index)
        if entry is not None:
            t, gen = entry
            if t.numel() == grad.numel() and t.dtype == grad.dtype and t.device == grad.device:
                return t, gen
            self.group.release(t)  # DDP rebuilt its buckets: new layout, new key
            gen += 1
        else:
            gen = 0
        t = self.group.allocate(grad.numel(), grad.dtype, grad.device)
        self._staging[index] = (t, gen)
        return t, gen

    def submit(self, bucket):
        if self._closed:
            raise RuntimeError("tern.ddp: the hook's state was closed")
        grad = bucket.buffer()
        index = bucket.index()
        self.clock.bucket_started()
        # DDP reads the returned future's value in C++, where an error set with Python's
        # Future.set_exception would arrive as a value that "can't be cast to Tensor"; a future
        # derived with then() carries the exception as a real error, so backward() raises it.
        fut = torch.futures.Future()
        returned = fut.then(_unwrap)
        what = f"tern allreduce of DDP bucket {index} ({grad.numel()} x {grad.dtype}, {self.codec})"
        try:
            staging, gen = self._staging_for(index, grad)
            staging.copy_(grad)
            if grad.is_cuda:
                # ternd reads the buffer from another process: the copy must have landed.
                torch.cuda.current_stream(grad.device).synchronize()
            request = self.group.allreduce(staging, codec=self.codec, gather_codec=self.gather_codec,
                                           key=self.key_of(index, gen), op="mean", timeout_ms=self.timeout_ms)
        except Exception as e:
            fut.set_exception(with_context(e, what) if isinstance(e, tern.TernError) else e)
            return returned
        self.buckets_submitted += 1
        self.bytes_submitted += grad.numel() * grad.element_size()
        deadline = time.monotonic() + self.timeout_ms / 1000.0 + COMPLETION_GRACE_S
        self._completer.add(request, fut, lambda: self._finish(staging), deadline, what)
        return returned

    def _finish(self, staging):
        if self.corrupt == "zero":
            staging.zero_()
        elif self.corrupt == "flip":
            staging.neg_()
        self.clock.bucket_done()
        return staging

    def close(self):
        """Stops the completion thread and gives the staging tensors back. Call after the last
        backward (no bucket in flight)."""
        if self._closed:
            return
        self._closed = True
        self._completer.close()
        for t, _ in self._staging.values():
            self.group.release(t)
        self._staging.clear()


def _unwrap(fut):
    return fut.wait()


def tern_hook(state, bucket):
    """The DDP communication hook (register with ddp.register_comm_hook(state, tern_hook))."""
    return state.submit(bucket)


def register_tern_hook(ddp_model, group, codec="terngrad", gather_codec=None, timeout_ms=30_000,
                       corrupt="none"):
    """Makes a TernHookState for `group` (a tern.Group) and registers tern_hook on `ddp_model`.
    codec: reduce-scatter direction ('fp32', 'bf16', 'terngrad', 'ternary-ef', 'sign-ef', ...);
    gather_codec: allgather direction (default: codec); timeout_ms: per-allreduce deadline."""
    state = TernHookState(group, codec=codec, gather_codec=gather_codec, timeout_ms=timeout_ms, corrupt=corrupt)
    ddp_model.register_comm_hook(state, tern_hook)
    return state
