import nasapp as nas

space = nas.space({
    "depth": nas.integer(1, 3),
    "width": nas.choice([32, 64, 128]),
    "activation": nas.choice(["relu", "tanh"]),
    "lr": nas.floating(1e-3, 3e-2, log=True),
})
