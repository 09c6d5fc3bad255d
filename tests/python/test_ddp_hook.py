#!/usr/bin/python3
"""The DDP hook's plumbing (python/tern/ddp.py) against a test double of tern.Group (fake_tern.py):
results come from the future, bucket keys and layout generations, op and codecs passed through,
errors and deadlines surfacing from loss.backward(), requests freed, staging reuse, the store-based
unique-id exchange. One process, world size 1, torch.distributed over a FileStore (no ports).
The real daemon path is covered by test_module.py and test_training_quality.py.
"""
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.join(HERE, "..", "..", "python"))  # after $PYTHONPATH (the built package)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

import tern  # noqa: E402
import tern.ddp  # noqa: E402
from fake_tern import FakeGroup  # noqa: E402


def make_model():
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def batch(step=0):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(5, 8, generator=g), torch.randint(0, 4, (5,), generator=g)


def reference_grads(model, step=0):
    """Gradients of a plain (non-DDP) copy of `model` on the step's batch."""
    import copy
    m = copy.deepcopy(model)
    x, y = batch(step)
    torch.nn.functional.cross_entropy(m(x), y).backward()
    return [p.grad.clone() for p in m.parameters()]


class FakeBucket:
    """Stands in for torch.distributed.GradBucket (the two methods the hook uses)."""

    def __init__(self, index, tensor):
        self._index, self._tensor = index, tensor

    def index(self):
        return self._index

    def buffer(self):
        return self._tensor


class HookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        dist.init_process_group("gloo", init_method=f"file://{cls.tmp.name}/store", rank=0, world_size=1)

    @classmethod
    def tearDownClass(cls):
        dist.destroy_process_group()
        cls.tmp.cleanup()

    def ddp_with(self, group, **kwargs):
        model = make_model()
        ddp = DDP(model)
        state = tern.ddp.register_tern_hook(ddp, group, **kwargs)
        self.addCleanup(state.close)
        return model, ddp, state

    def step(self, ddp, step=0):
        x, y = batch(step)
        ddp.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(ddp(x), y).backward()

    def test_gradients_are_the_futures_result(self):
        group = FakeGroup(transform=lambda t: t.mul_(0.5), delay_s=0.01)
        model, ddp, state = self.ddp_with(group, codec="ternary-ef", gather_codec="bf16")
        for step in range(3):
            expected = reference_grads(model, step)
            self.step(ddp, step)
            for p, e in zip(model.parameters(), expected):
                torch.testing.assert_close(p.grad, e * 0.5, rtol=1e-6, atol=1e-7)
        for c in group.calls:
            self.assertEqual((c["codec"], c["gather_codec"], c["op"]), ("ternary-ef", "bf16", "mean"))
            self.assertEqual(c["timeout_ms"], 30_000)
        self.assertTrue(all(r.freed for r in group.requests), "every completed request is freed")
        self.assertEqual(state.buckets_submitted, len(group.calls))

    def test_keys_are_bucket_indices_with_a_layout_generation(self):
        # DDP (world size 1 here) keeps one bucket; its rebuild into several buckets after step 1 is
        # played with stand-in buckets: step 1 one bucket of 10, later buckets of 4 and 6.
        group = FakeGroup()
        state = tern.ddp.TernHookState(group, codec="sign-ef")
        self.addCleanup(state.close)

        def run(sizes):
            futs = [tern.ddp.tern_hook(state, FakeBucket(i, torch.full((n,), float(i + 1))))
                    for i, n in enumerate(sizes)]
            return [f.wait() for f in futs]

        out = run([10])
        self.assertEqual([c["key"] for c in group.calls], [0])
        torch.testing.assert_close(out[0], torch.full((10,), 1.0))
        group.calls.clear()
        out = run([4, 6])
        # Bucket 0 changed size: its key moves to generation 1; bucket 1 is new (generation 0).
        self.assertEqual([c["key"] for c in group.calls], [(1 << 32) | 0, 1])
        self.assertEqual([c["numel"] for c in group.calls], [4, 6])
        torch.testing.assert_close(out[1], torch.full((6,), 2.0))
        self.assertEqual(len(group.released), 1, "bucket 0's first staging tensor was given back")
        group.calls.clear()
        run([4, 6])
        self.assertEqual([c["key"] for c in group.calls], [(1 << 32) | 0, 1], "stable afterwards")
        self.assertEqual(len(group.allocated), 3, "staging reused across steps")

    def test_ddp_bucket_covers_every_parameter(self):
        group = FakeGroup()
        model, ddp, _ = self.ddp_with(group, codec="terngrad")
        ptrs = []
        for s in range(3):
            self.step(ddp, s)
            ptrs.append(group.calls[-1]["ptr"])
        self.assertEqual(sum(c["numel"] for c in group.calls[-1:]), sum(p.numel() for p in model.parameters()))
        self.assertEqual(len(set(ptrs)), 1, "the same staging tensor every step")
        self.assertEqual(len(group.allocated), 1)

    def test_request_error_is_raised_by_backward(self):
        group = FakeGroup(fail_with=tern.PeerFailureError("allreduce 7 of group 3f2a: rank 3 on host node-b left"))
        _, ddp, _ = self.ddp_with(group, codec="terngrad")
        with self.assertRaisesRegex(RuntimeError, r"DDP bucket 0 .*rank 3 on host node-b left"):
            self.step(ddp)

    def test_submission_error_is_raised_by_backward(self):
        group = FakeGroup(submit_error=tern.InvalidArgumentError("allreduce: buffer is not tern memory"))
        _, ddp, _ = self.ddp_with(group, codec="terngrad")
        with self.assertRaisesRegex(RuntimeError, "buffer is not tern memory"):
            self.step(ddp)

    def test_request_that_never_completes_fails_at_its_deadline(self):
        group = FakeGroup(hang=True)
        old = tern.ddp.COMPLETION_GRACE_S
        tern.ddp.COMPLETION_GRACE_S = 0.2
        self.addCleanup(setattr, tern.ddp, "COMPLETION_GRACE_S", old)
        _, ddp, state = self.ddp_with(group, codec="terngrad", timeout_ms=300)
        t = time.monotonic()
        with self.assertRaisesRegex(RuntimeError, "no completion within its deadline"):
            self.step(ddp)
        elapsed = time.monotonic() - t
        self.assertLess(elapsed, 5.0)
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertEqual(len(state._completer.abandoned), 1, "a pending request is not freed (would block)")

    def test_corruption_modes_damage_the_result(self):
        for mode, factor in (("zero", 0.0), ("flip", -1.0)):
            with self.subTest(mode=mode):
                group = FakeGroup()
                model, ddp, _ = self.ddp_with(group, codec="terngrad", corrupt=mode)
                expected = reference_grads(model)
                self.step(ddp)
                for p, e in zip(model.parameters(), expected):
                    torch.testing.assert_close(p.grad, e * factor)

    def test_exchange_clock_covers_the_wait(self):
        group = FakeGroup(delay_s=0.15)
        _, ddp, state = self.ddp_with(group, codec="terngrad")
        self.step(ddp)
        w = state.clock.take()
        self.assertGreaterEqual(w, 0.14)
        self.assertLess(w, 5.0)
        self.assertEqual(state.clock.take(), 0.0, "take() resets")

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "unknown tern codec 'ternary'"):
            tern.ddp.TernHookState(FakeGroup(), codec="ternary")
        with self.assertRaisesRegex(ValueError, "timeout_ms must be > 0"):
            tern.ddp.TernHookState(FakeGroup(), timeout_ms=0)
        with self.assertRaisesRegex(ValueError, "corrupt must be"):
            tern.ddp.TernHookState(FakeGroup(), corrupt="maybe")

    def test_closed_state_refuses_buckets(self):
        group = FakeGroup()
        _, ddp, state = self.ddp_with(group, codec="terngrad")
        self.step(ddp)
        state.close()
        with self.assertRaisesRegex(RuntimeError, "closed"):
            self.step(ddp)


class JoinGroupTest(unittest.TestCase):
    """join_group: rank 0 publishes the unique id in the store, the others read it."""

    def test_unique_id_travels_through_the_store(self):
        store = dist.HashStore()
        joined = []

        class FakeClient:
            def get_unique_id(self):
                return "tern1:10.0.0.1:1234:SECRET"

        def fake_join(client, uid, rank, nranks, local_size, timeout_ms, seed):
            joined.append((uid, rank, nranks, local_size))
            return "group"

        old_connect, old_join = tern.connect, tern.Group.join
        tern.connect = lambda socket_path=None: FakeClient()
        tern.Group.join = staticmethod(fake_join)
        try:
            os.environ.pop("TERN_UNIQUE_ID", None)
            tern.ddp.join_group(0, 2, 1, store=store)
            tern.ddp.join_group(1, 2, 1, store=store)
        finally:
            tern.connect, tern.Group.join = old_connect, old_join
        self.assertEqual(joined, [("tern1:10.0.0.1:1234:SECRET", 0, 2, 1), ("tern1:10.0.0.1:1234:SECRET", 1, 2, 1)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
