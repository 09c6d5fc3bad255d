#!/usr/bin/python3
"""The _tern module and the tern package against a real ternd (ternd_fixture.py): errors as
exception classes with libtern's message, shared buffers through the buffer protocol, a group of
two local trainers (threads, one connection each) with exact fp32 sums, bit-identical results,
request test/wait semantics, registered (staged) memory, mismatches and a daemon that goes away.
"""
import os
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tern  # noqa: E402
from ternd_fixture import Ternd  # noqa: E402

if tern._tern is None:
    raise SystemExit(f"test_module: the compiled module is missing ({tern._import_error}); PYTHONPATH must name "
                     "<build>/python")

TIMEOUT_MS = 20_000


def run_ranks(n, body):
    """Runs body(rank) on n threads; returns their results, re-raising the first failure."""
    results, errors = [None] * n, [None] * n

    def main(r):
        try:
            results[r] = body(r)
        except BaseException as e:  # reported to the test below
            errors[r] = e
    threads = [threading.Thread(target=main, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        if t.is_alive():
            raise AssertionError("a rank thread is still running after 60 s")
    for e in errors:
        if e is not None:
            raise e
    return results


class ModuleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ternd = Ternd()

    @classmethod
    def tearDownClass(cls):
        cls.ternd.close()

    def form_group(self, n=2):
        """n trainers of one group on this node: (client, group) per rank."""
        first = tern.connect(self.ternd.socket_path)
        uid = first.get_unique_id()
        self.assertTrue(uid.startswith("tern1:"), uid)

        def join(r):
            c = first if r == 0 else tern.connect(self.ternd.socket_path)
            return c, tern.Group.join(c, uid, rank=r, nranks=n, local_size=n, timeout_ms=TIMEOUT_MS)
        return run_ranks(n, join)

    def test_connect_to_no_daemon_names_the_socket(self):
        with self.assertRaises(tern.UnavailableError) as cm:
            tern.connect(os.path.join(self.ternd.dir.name, "nobody.sock"))
        e = cm.exception
        self.assertIsInstance(e, tern.TernError)
        self.assertEqual((e.status, e.status_name), (5, "unavailable"))
        self.assertIn("nobody.sock", str(e))

    def test_version(self):
        self.assertRegex(tern.version(), r"^\d+\.\d+\.\d+$")

    def test_alloc_is_a_writable_buffer(self):
        c = tern.connect(self.ternd.socket_path)
        buf = c.alloc(4096)
        self.assertEqual((buf.nbytes, len(buf)), (4096, 4096))
        self.assertEqual(buf.ptr % 64, 0, "64-byte aligned")
        a = np.frombuffer(buf, dtype=np.float32)
        a[:] = 1.5
        t = torch.frombuffer(buf, dtype=torch.float32)
        self.assertEqual(float(t.sum()), 1.5 * 1024)
        del buf  # the views keep the memory
        self.assertEqual(float(a.sum()), 1.5 * 1024)

    def test_allreduce_sum_and_mean_are_exact_in_fp32(self):
        ranks = self.form_group(2)
        n = 100_000

        def body(r):
            c, g = ranks[r]
            self.assertEqual((g.rank, g.size), (r, 2))
            t = g.allocate(n, torch.float32)
            t.copy_(torch.arange(n, dtype=torch.float32) * (r + 1))
            g.allreduce(t, codec="fp32", key=1, op="sum").wait_done(TIMEOUT_MS)
            s = t.clone()
            t.copy_(torch.arange(n, dtype=torch.float32) * (r + 1))
            req = g.allreduce(t, codec="fp32", key=2, op="mean")
            self.assertTrue(req.wait(TIMEOUT_MS))
            self.assertTrue(req.test(), "a completed request stays completed")
            self.assertEqual(req.error, "")
            return s, t.clone()
        (s0, m0), (s1, m1) = run_ranks(2, body)
        expected = torch.arange(n, dtype=torch.float32) * 3
        self.assertTrue(torch.equal(s0, expected))
        self.assertTrue(torch.equal(m0, expected / 2))
        self.assertTrue(torch.equal(s0, s1) and torch.equal(m0, m1))

    def test_every_codec_gives_identical_results_on_every_rank(self):
        ranks = self.form_group(2)
        n = 50_000
        g0 = torch.Generator().manual_seed(5)
        inputs = [torch.randn(n, generator=g0) for _ in range(2)]
        exact = (inputs[0] + inputs[1]) / 2
        for codec in ("fp32", "bf16", "terngrad", "ternary-ef", "sign-ef"):
            def body(r, codec=codec):
                _, g = ranks[r]
                t = g.allocate(n, torch.float32)
                t.copy_(inputs[r])
                g.allreduce(t, codec=codec, key=10, op="mean").wait_done(TIMEOUT_MS)
                out = t.clone()
                g.release(t)
                return out
            with self.subTest(codec=codec):
                out0, out1 = run_ranks(2, body)
                self.assertTrue(torch.equal(out0, out1), "bit-identical on both trainers")
                err = float((out0 - exact).abs().max())
                scale = float(exact.abs().max())
                # fp32 exact; bf16 within its rounding; the 1- and 2-bit codecs only bounded.
                bound = {"fp32": 0.0, "bf16": 2 ** -7 * scale}.get(codec, 2 * float(torch.stack(inputs).abs().max()))
                self.assertLessEqual(err, bound)
                # The compressed results still point the same way as the exact mean.
                self.assertGreater(float(torch.nn.functional.cosine_similarity(out0, exact, dim=0)), 0.3)

    def test_sign_ef_keeps_a_residual_per_key(self):
        # One trainer on one node: the allgather direction alone encodes, with the owner's residual
        # (docs/collective.md). Reference: e <- x + e - C(x + e), C = per 128-block mean|v| * sign(v),
        # in float64; ternd's fp32 block sums differ from it by rounding only.
        _, g = self.form_group(1)[0]
        n, steps = 4096, 12
        x = torch.randn(n, generator=torch.Generator().manual_seed(11))
        t = g.allocate(n, torch.float32)
        e = torch.zeros(n, dtype=torch.float64)
        for step in range(steps):
            t.copy_(x)
            g.allreduce(t, codec="sign-ef", key=500, op="sum").wait_done(TIMEOUT_MS)
            v = (x.double() + e).view(-1, 128)
            alpha = v.abs().mean(dim=1, keepdim=True)
            expected = torch.where(v >= 0, alpha, -alpha).view(-1)
            e = (v.view(-1) - expected)
            torch.testing.assert_close(t.double(), expected, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"step {step}: {m}")
        # A fresh key starts from a zero residual: its first result is the plain sign code of x.
        t.copy_(x)
        g.allreduce(t, codec="sign-ef", key=501, op="sum").wait_done(TIMEOUT_MS)
        v = x.double().view(-1, 128)
        alpha = v.abs().mean(dim=1, keepdim=True)
        torch.testing.assert_close(t.double(), torch.where(v >= 0, alpha, -alpha).view(-1), rtol=1e-4, atol=1e-5)

    def test_registered_host_memory_is_staged(self):
        ranks = self.form_group(2)

        def body(r):
            c, g = ranks[r]
            t = torch.full((1000,), float(r + 1))
            c.register(t.data_ptr(), t.numel() * 4)
            try:
                g.allreduce(t, codec="fp32", key=3, op="sum").wait_done(TIMEOUT_MS)
            finally:
                c.deregister(t.data_ptr())
            return t
        t0, t1 = run_ranks(2, body)
        self.assertTrue(torch.equal(t0, torch.full((1000,), 3.0)) and torch.equal(t1, t0))

    def test_unregistered_memory_is_refused(self):
        _, g = self.form_group(1)[0]
        with self.assertRaises(tern.InvalidArgumentError) as cm:
            g.allreduce(torch.ones(10), codec="fp32", key=0)
        self.assertIsInstance(cm.exception, ValueError)

    def test_mismatched_counts_fail_on_every_rank(self):
        ranks = self.form_group(2)

        def body(r):
            _, g = ranks[r]
            t = g.allocate(100 + r, torch.float32)
            t.fill_(1.0)
            try:
                g.allreduce(t, codec="fp32", key=4, op="sum").wait_done(TIMEOUT_MS)
            except tern.TernError as e:
                return str(e)
            return None
        msgs = run_ranks(2, body)
        for m in msgs:
            self.assertIsNotNone(m, "a mismatched allreduce must fail")
            self.assertRegex(m, "100|101")

    def test_wrong_unique_id_is_refused(self):
        c = tern.connect(self.ternd.socket_path)
        with self.assertRaises(tern.TernError):
            tern.Group.join(c, "not-a-unique-id", rank=0, nranks=1, local_size=1, timeout_ms=2000)
        with self.assertRaisesRegex(tern.InvalidArgumentError, "unique id is 300 characters"):
            tern.Group.join(c, "x" * 300, rank=0, nranks=1, local_size=1)

    def test_unknown_codec_and_dtype(self):
        _, g = self.form_group(1)[0]
        t = g.allocate(8, torch.float32)
        with self.assertRaisesRegex(ValueError, "unknown tern codec 'int8'"):
            g.allreduce(t, codec="int8")
        with self.assertRaisesRegex(ValueError, "not torch.float64"):
            g.allreduce(torch.zeros(4, dtype=torch.float64))


class DaemonGoneTest(unittest.TestCase):
    def test_operations_fail_when_ternd_stops(self):
        d = Ternd()
        try:
            c = tern.connect(d.socket_path)
            g = tern.Group.join(c, c.get_unique_id(), rank=0, nranks=1, local_size=1, timeout_ms=TIMEOUT_MS)
            t = g.allocate(1000, torch.float32)
            t.fill_(2.0)
            g.allreduce(t, codec="fp32", key=0, op="sum").wait_done(TIMEOUT_MS)
            self.assertTrue(torch.equal(t, torch.full((1000,), 2.0)))
            self.assertEqual(d.stop(), 0, "ternd exits cleanly on SIGTERM")
            with self.assertRaises(tern.TernError) as cm:
                g.allreduce(t, codec="fp32", key=0, op="sum").wait_done(TIMEOUT_MS)
            self.assertIsInstance(cm.exception, tern.UnavailableError, str(cm.exception))
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
