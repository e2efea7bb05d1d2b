"""A custom search space: a small CNN family for 8x8 images, written with nasapp's space language."""

import nasapp as nas

space = nas.space({
    "channels": nas.choice([8, 16, 32]),
    "blocks": nas.repeat({
        "kernel": nas.choice([3, 5]),
        "activation": nas.choice(["relu", "gelu"]),
        "batchnorm": nas.boolean(),
    }, min=1, max=3),
    "head": nas.choice({"pool": {}, "mlp": {"width": nas.choice([32, 64])}}),
    "dropout": nas.floating(0.0, 0.3),
})
