#!/usr/bin/python3
"""Training quality through the real daemon path: PyTorch DDP on scikit-learn's digits
(examples/digits_ddp.py), gradients averaged by the libtern DDP hook. NODES ternds run on this
machine, each standing for one node (own socket, inter-node traffic over loopback), with
TRAINERS_PER_NODE trainer processes connected to each, so both compressed directions of the
inter-node allreduce (reduce-scatter and allgather, each with its own error-feedback residual) are
exercised, as on a cluster.

Claims checked (fixed seeds, same hyper-parameters and epochs in every run):
  1. tern fp32 (the exact allreduce, the reference) learns the task: test accuracy >= 90 %.
  2. terngrad, ternary-ef and sign-ef each reach a test accuracy within 1.5 points of it
     (accuracy >= reference - 1.5 points; better is fine).
  3. The test has power: the terngrad run with the hook's TEST-ONLY fault injection (--corrupt zero:
     the averaged gradient's scale lost, what a codec that drops its block scales would deliver)
     ends at least 20 points below the reference, far outside the 1.5-point band. (--corrupt flip,
     a sign bug, makes training diverge until ternd refuses the non-finite gradients: also caught,
     but as an error rather than an accuracy.)
  4. Every run ends with bit-identical weights on every trainer (digits_ddp.py exits 1 otherwise).

Set-up: see the constants below (NODES x TRAINERS_PER_NODE trainers, MLP 64-HIDDEN-HIDDEN-10,
BATCH per trainer, EPOCHS, SGD LR and MOMENTUM); SEED fixes the data split, the shuffling, the
initial weights and terngrad's rounding seed, so every run is reproducible.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
EXAMPLE = os.path.join(HERE, "..", "..", "examples", "digits_ddp.py")

from ternd_fixture import Ternd  # noqa: E402

NODES = 2
TRAINERS_PER_NODE = 1
TRAINERS = NODES * TRAINERS_PER_NODE
HIDDEN = 512
EPOCHS = 5
BATCH = 128 // TRAINERS  # global batch 128, as in the demo
LR = 0.1
MOMENTUM = 0.9
SEED = 1234
TOLERANCE_POINTS = 1.5
REFERENCE_MIN_ACCURACY = 0.90
BROKEN_MARGIN_POINTS = 20.0
RUN_TIMEOUT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrainingQualityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ternds = []
        for _ in range(NODES):
            cls.ternds.append(Ternd())
        cls.tmp = tempfile.TemporaryDirectory(prefix="tern-quality-")
        cls.results = {}

    @classmethod
    def tearDownClass(cls):
        for d in cls.ternds:
            d.close()
        cls.tmp.cleanup()

    def train(self, codec, corrupt="none"):
        """Runs the TRAINERS processes of one training run; returns rank 0's result document."""
        key = (codec, corrupt)
        if key in self.results:
            return self.results[key]
        out = os.path.join(self.tmp.name, f"{codec}-{corrupt}.json")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("TERN_NODE", "TERN_NODES")}
        procs, logs = [], []
        t = time.monotonic()
        for r in range(TRAINERS):
            log = open(os.path.join(self.tmp.name, f"{codec}-{corrupt}-{r}.log"), "w+")
            cmd = [sys.executable, EXAMPLE, "--comm", "tern", "--codec", codec, "--corrupt", corrupt,
                   "--rank", str(r), "--world", str(TRAINERS), "--local-size", str(TRAINERS_PER_NODE),
                   "--master", "127.0.0.1", "--port", str(port), "--iface", "",
                   "--hidden", str(HIDDEN), "--epochs", str(EPOCHS), "--batch", str(BATCH), "--seed", str(SEED),
                   "--lr", str(LR), "--momentum", str(MOMENTUM),
                   "--tern-socket", self.ternds[r // TRAINERS_PER_NODE].socket_path, "--timeout", "60"]
            if r == 0:
                cmd += ["-o", out]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
            logs.append(log)
        failed = []
        for r, p in enumerate(procs):
            try:
                rc = p.wait(max(1.0, RUN_TIMEOUT_S - (time.monotonic() - t)))
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                rc = "timeout"
            if rc != 0:
                logs[r].seek(0)
                failed.append(f"trainer {r} ({rc}):\n{logs[r].read()[-3000:]}")
        for log in logs:
            log.close()
        if failed:
            self.fail(f"{codec} (corrupt={corrupt}) run failed:\n" + "\n".join(failed) +
                      f"\nternd log (node 0):\n{self.ternds[0].log()[-3000:]}")
        with open(out) as f:
            res = json.load(f)
        print(f"\n  {codec:10s} corrupt={corrupt:5s}: test accuracy {res['test_accuracy'] * 100:.2f} %, "
              f"test loss {res['test_loss']:.4f}, {res['steps']} steps in {time.monotonic() - t:.1f} s", flush=True)
        self.assertTrue(res["replicas_identical"])
        self.results[key] = res
        return res

    def reference(self):
        ref = self.train("fp32")
        self.assertGreaterEqual(ref["test_accuracy"], REFERENCE_MIN_ACCURACY, "fp32 through tern must learn digits")
        return ref["test_accuracy"]

    def check_codec(self, codec):
        ref = self.reference()
        acc = self.train(codec)["test_accuracy"]
        self.assertGreaterEqual(acc * 100, ref * 100 - TOLERANCE_POINTS,
                                f"{codec}: {acc * 100:.2f} % vs fp32 {ref * 100:.2f} %")

    def test_1_terngrad_within_tolerance(self):
        self.check_codec("terngrad")

    def test_2_ternary_ef_within_tolerance(self):
        self.check_codec("ternary-ef")

    def test_3_sign_ef_within_tolerance(self):
        self.check_codec("sign-ef")

    def test_4_a_broken_codec_is_caught(self):
        ref = self.reference()
        acc = self.train("terngrad", corrupt="zero")["test_accuracy"]
        self.assertLess(acc * 100, ref * 100 - BROKEN_MARGIN_POINTS,
                        f"scale-less gradients still reached {acc * 100:.2f} % (fp32 {ref * 100:.2f} %): "
                        "the quality check would not notice a broken codec")


if __name__ == "__main__":
    unittest.main(verbosity=2)
