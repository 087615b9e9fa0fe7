"""PyTorch peer of the driving agent's A2C update: the paper's actor-critic network (the same
layers and shapes as rwt::rl::ActorCritic), a Beta policy per action dimension, n-step returns,
the A2C loss, global-norm clipping and one RMSprop step — timed per update.

    python torch_a2c_update.py THREADS STEPS ACTORS CHANNELS HEIGHT WIDTH REPEATS   → one JSON line
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads, steps, actors, c, h, w, repeats = (int(a) for a in sys.argv[1:8])
torch.set_num_threads(threads)
torch.manual_seed(0)
M = 7


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 32, 3)
        self.conv2 = nn.Conv2d(32, 16, 3)
        self.fc1 = nn.Linear(16 * (h - 4) * (w - 4), 1024)
        self.fc2 = nn.Linear(1024, 512)
        self.m1 = nn.Linear(M, 64)
        self.m2 = nn.Linear(64, 64)
        self.j1 = nn.Linear(576, 256)
        self.j2 = nn.Linear(256, 128)
        self.p = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 6))
        self.v = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, latent, meas):
        x = F.relu(self.conv2(F.relu(self.conv1(latent)))).flatten(1)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        m = F.relu(self.m2(F.relu(self.m1(meas))))
        j = F.relu(self.j2(F.relu(self.j1(torch.cat([x, m], 1)))))
        return self.p(j), self.v(j).squeeze(1)


net = ActorCritic()
opt = torch.optim.RMSprop(net.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)
n = (steps + 1) * actors
latent = torch.randn(n, c, h, w)
meas = torch.randn(n, M)
actions = torch.rand(steps * actors, 3).clamp(1e-3, 1 - 1e-3)
rewards = torch.randn(steps, actors)
masks = torch.ones(steps, actors)


def update():
    head, value = net(latent, meas)
    ab = 1.0 + F.softplus(head[: steps * actors])
    dist = torch.distributions.Beta(ab[:, :3], ab[:, 3:])
    log_prob = dist.log_prob(actions).sum(1)
    entropy = dist.entropy().sum(1).mean()
    with torch.no_grad():
        v = value.view(steps + 1, actors)
        ret = torch.empty(steps, actors)
        r = v[steps]
        for t in reversed(range(steps)):
            r = rewards[t] + 0.99 * masks[t] * r
            ret[t] = r
        ret = ret.flatten()
    adv = (ret - value[: steps * actors]).detach()
    loss = 0.5 * 0.5 * (ret - value[: steps * actors]).pow(2).mean() - (adv * log_prob).mean() - 0.01 * entropy
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), 0.5)
    opt.step()


update()  # warm-up
times = []
for _ in range(repeats):
    t = time.perf_counter()
    update()
    times.append(time.perf_counter() - t)
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "update_s": sorted(times)[len(times) // 2]}))
