"""PyTorch CUDA peers of benches/cuda.rs, timed the same way (median of the timed repeats after
one warm-up, the device synchronised around each), one JSON line on stdout:

    python torch_cuda_bench.py losses B N H W REPEATS
        fused-kernel-free PyTorch: F.cross_entropy, and the exact one-hot W of Eq. 2 written
        as PyTorch code (softmax, the cost row of each label gathered, their dot product),
        forward + backward on f32 logits [B, N, H, W]
    python torch_cuda_bench.py sinkhorn PIXELS N EPS TOL MAX_IT
        batched log-domain Sinkhorn (plain, no eps-scaling) on PIXELS problems of N classes,
        the inputs from the .npy files in $RWT_SINKHORN_DIR (pred, target, cost), stopping when
        every problem's L1 marginal error is below TOL; eps is absolute
    python torch_cuda_bench.py enet B H W CLASSES REPEATS
        ENet (benches/peers/enet_reference.py) with cuDNN (benchmark mode): forward in eval
        mode without a graph, and a training step's CE loss + backward
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True
# f32 everywhere, as rwt: no TF32 in matrix products or convolutions.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def timed(fn, repeats):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def losses(b, n, h, w, repeats):
    g = torch.Generator(device=dev).manual_seed(0)
    z = (3 * torch.randn(b, n, h, w, device=dev, generator=g)).requires_grad_()
    y = torch.randint(0, n, (b, h, w), device=dev, generator=g)
    cost = torch.rand(n, n, device=dev, generator=g) * (1 - torch.eye(n, device=dev))

    def ce():
        z.grad = None
        F.cross_entropy(z, y).backward()

    def wasserstein():
        z.grad = None
        s = torch.softmax(z, 1)
        rows = cost[y].permute(0, 3, 1, 2)  # [B, N, H, W]: C[y][k]
        (s * rows).sum(1).mean().backward()

    return {"cross_entropy_s": timed(ce, repeats), "wasserstein_s": timed(wasserstein, repeats)}


def sinkhorn(pixels, n, eps, tol, max_it):
    import numpy as np

    d = os.environ["RWT_SINKHORN_DIR"]
    a = torch.from_numpy(np.load(os.path.join(d, "pred.npy"))).to(dev)[:pixels]
    b = torch.from_numpy(np.load(os.path.join(d, "target.npy"))).to(dev)[:pixels]
    m = torch.from_numpy(np.load(os.path.join(d, "cost.npy"))).to(dev)
    out = {}

    def solve():
        loga, logb = a.log(), b.log()  # log 0 = -inf: no mass there
        f = torch.zeros_like(a)
        g = torch.zeros_like(b)
        it = 0
        while it < max_it:
            # P_ij = a_i b_j exp((f_i + g_j - M_ij) / eps); g, then f, as rwt's kernel.
            g = -eps * torch.logsumexp(loga[:, :, None] + (f[:, :, None] - m[None]) / eps, dim=1)
            f_new = -eps * torch.logsumexp(logb[:, None, :] + (g[:, None, :] - m[None]) / eps, dim=2)
            it += 1
            if it % 10 == 0:
                # Row sums before the f update are a_i exp((f_i - f_new_i) / eps): rwt's error.
                err = (a * torch.expm1((f - f_new) / eps).abs()).sum(1).max().item()
                f = f_new
                if err < tol:
                    break
            else:
                f = f_new
        p = torch.exp(loga[:, :, None] + logb[:, None, :] + (f[:, :, None] + g[:, None, :] - m[None]) / eps)
        out["values"] = (p * m[None]).sum((1, 2))
        out["iterations"] = it

    seconds = timed(solve, 1)
    return {"seconds": seconds, "iterations": out["iterations"], "pixels": pixels, "mean_value": out["values"].mean().item()}


def enet(b, h, w, classes, repeats):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from enet_reference import ENet

    torch.manual_seed(0)
    net = ENet(classes).to(dev)
    x = torch.randn(b, 3, h, w, device=dev)
    y = torch.randint(0, classes, (b, h, w), device=dev)

    def forward():
        net.eval()
        with torch.no_grad():
            net(x)

    def forward_backward():
        net.train()
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    return {"forward_s": timed(forward, repeats), "forward_backward_s": timed(forward_backward, repeats)}


def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "losses":
        r = losses(*(int(v) for v in args))
    elif what == "sinkhorn":
        r = sinkhorn(int(args[0]), int(args[1]), float(args[2]), float(args[3]), int(args[4]))
    elif what == "enet":
        r = enet(*(int(v) for v in args))
    else:
        raise SystemExit(f"unknown benchmark {what}")
    r["torch"] = torch.__version__
    r["cudnn"] = torch.backends.cudnn.version()
    r["device"] = torch.cuda.get_device_name()
    print(json.dumps(r))


if __name__ == "__main__":
    main()
