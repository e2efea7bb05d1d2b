"""A standalone PyTorch training script used as a command trainer.

nasapp starts it once per trial with NASAPP_TRIAL (a JSON file: arch, seed, device, workdir, proxy settings,
data spec) and NASAPP_METRICS (where to append JSON lines). `nasapp.trial()` and `nasapp.report()` do both;
any language can do the same by reading and appending those files.
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import nasapp

trial = nasapp.trial()
arch, settings = trial["arch"], trial["proxy"]
torch.manual_seed(trial["seed"])

digits = load_digits()
x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
order = np.random.default_rng(0).permutation(len(x))  # a fixed split for every trial
train_idx, val_idx = torch.tensor(order[:1400]), torch.tensor(order[1400:])

layers, width = [], 64
for _ in range(arch["depth"]):
    layers += [nn.Linear(width, arch["width"]), nn.ReLU() if arch["activation"] == "relu" else nn.Tanh()]
    width = arch["width"]
model = nn.Sequential(*layers, nn.Linear(width, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=arch["lr"])

steps = settings["steps"]
for step in range(1, steps + 1):
    batch = train_idx[torch.randint(len(train_idx), (64,))]
    loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % settings["eval_every"] == 0:
        with torch.no_grad():
            accuracy = (model(x[val_idx]).argmax(1) == y[val_idx]).float().mean().item()
        nasapp.report(step=step, accuracy=accuracy, loss=loss.item())  # an intermediate report

with torch.no_grad():
    accuracy = (model(x[val_idx]).argmax(1) == y[val_idx]).float().mean().item()
nasapp.report(accuracy=accuracy, params=sum(p.numel() for p in model.parameters()))  # the final line
