"""PyTorch ENet on the CPU: forward and forward+backward images/s for the ENet benchmark.

    python torch_enet_bench.py THREADS BATCH HEIGHT WIDTH REPEATS   → one JSON line
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enet_reference import ENet  # noqa: E402

threads, batch, h, w, repeats = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = ENet(11)
x = torch.randn(batch, 3, h, w)
y = torch.randint(0, 11, (batch, h, w))


def timed(fn):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def forward():
    net.eval()
    with torch.no_grad():
        net(x)


def forward_backward():
    net.train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()


print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "forward_s": timed(forward), "forward_backward_s": timed(forward_backward)}))
