"""Static costs of a torch model: MACs (and FLOPs = 2 x MACs) of one forward pass of the example batch, and
the parameter count.

MACs (multiply-accumulates) are the unit of the NAS papers and torchvision's model tables, where they are
often called FLOPs: MnasNet-B1 at 224x224 is 314 M of them. nasapp reports ``macs`` as the headline figure
and keeps ``flops`` (two floating-point operations per multiply-accumulate) beside it, labelled as such."""

from __future__ import annotations

from typing import Any


def count_params(model: Any) -> int:
    """The number of parameters (trainable or not; buffers such as batch-norm statistics excluded)."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model: Any, example_input: Any) -> int:
    """FLOPs of one eval-mode forward pass over the example batch, by ``torch.utils.flop_counter``.

    Torch counts matrix multiplications and convolutions (a multiply-add is 2 FLOPs); element-wise ops,
    pooling and normalisation count 0, as in most papers' FLOP figures.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    args = tuple(example_input) if isinstance(example_input, list | tuple) else (example_input,)
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(*args)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def model_profile(model: Any, example_input: Any) -> dict[str, int]:
    """``{"macs", "flops", "params"}`` for ``model`` on ``example_input`` (its batch size counts)."""
    flops = count_flops(model, example_input)
    return {"macs": flops // 2, "flops": flops, "params": count_params(model)}
