"""A Python trainer for the custom space: `train(arch, ctx) -> dict`.

nasapp calls it in a worker process with `ctx.data` (the job's [data], as numpy arrays), `ctx.device`,
`ctx.seed`, `ctx.proxy` (the [trainer] table) and `ctx.report` / `ctx.should_stop`. At the end it saves the
trained model with `ctx.save_model` (ONNX for the latency reward and `nasapp export`, with the class names and
how inputs were prepared). `build_model` is the optional hook that lets `nasapp export` check the ONNX file
against PyTorch and `nasapp.load_model` rebuild the exported model (docs/jobs.md: "Saving the model").
"""

import torch
from torch import nn


def build_model(arch: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    channels = input_shape[0]
    for block in arch["blocks"]:
        layers.append(nn.Conv2d(channels, arch["channels"], block["kernel"], padding=block["kernel"] // 2))
        if block["batchnorm"]:
            layers.append(nn.BatchNorm2d(arch["channels"]))
        layers.append(nn.ReLU() if block["activation"] == "relu" else nn.GELU())
        channels = arch["channels"]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(arch["dropout"])]
    if "mlp" in arch["head"]:
        width = arch["head"]["mlp"]["width"]
        layers += [nn.Linear(channels, width), nn.ReLU()]
        channels = width
    layers.append(nn.Linear(channels, num_classes))
    return nn.Sequential(*layers)


def train(arch: dict, ctx) -> dict:
    torch.manual_seed(ctx.seed)
    data = ctx.data
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_val, y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    model = build_model(arch, data.input_shape, data.num_classes)
    steps = ctx.proxy["steps"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=ctx.proxy.get("lr") or 3e-3)
    generator = torch.Generator().manual_seed(ctx.seed)
    accuracy = 0.0
    for step in range(1, steps + 1):
        batch = torch.randint(len(x), (ctx.proxy["batch_size"],), generator=generator)
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % ctx.proxy["eval_every"] == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
            model.train()
            ctx.report(step, accuracy=accuracy, loss=loss.item())
        if ctx.should_stop():
            break
    model.eval()
    ctx.save_model(model, x_val[:8], class_names=data.class_names, preprocessing={
        "source": "sklearn.datasets.load_digits().images (8x8 grayscale, values 0..16)",
        "scale": "x / 16", "channel_order": "grayscale (1 channel)", "size": [8, 8], "layout": "NCHW",
    })
    return {"accuracy": accuracy, "params": sum(p.numel() for p in model.parameters())}
