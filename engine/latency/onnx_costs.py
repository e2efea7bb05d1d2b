"""Multiply-accumulates (MACs) and parameters of an ONNX graph, read from the file alone.

MACs are the unit of the NAS papers and torchvision's model tables ("FLOPs" in most of them): for a ``Conv``,
output elements x input channels per group x kernel area; for ``Gemm`` and ``MatMul``, output elements x the
shared dimension. Other operators (additions, activations, pooling, normalisation) count nothing, as in
those tables. Shapes come from ONNX's shape inference with the graph's batch dimension set to ``batch_size``.
Parameters are the elements of the graph's initializers (weights and biases; an exporter that folded batch
norm into the convolutions leaves no batch-norm tensors, so the count can be below PyTorch's).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def onnx_costs(path: Path, batch_size: int = 1) -> dict[str, int | None]:
    """``{"macs", "flops", "params"}`` of the ONNX model at ``path`` (None where the graph does not say)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    params = sum(math.prod(int(d) for d in tensor.dims) for tensor in model.graph.initializer)
    macs = _macs(model, batch_size)
    return {"macs": macs, "flops": None if macs is None else 2 * macs, "params": int(params)}


def _macs(model: Any, batch_size: int) -> int | None:
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {t.name for t in model.graph.initializer}
    for graph_input in model.graph.input:
        if graph_input.name in initializers:
            continue
        dims = graph_input.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].ClearField("dim_param")
            dims[0].dim_value = batch_size
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - a graph shape inference cannot follow has no MAC figure
        return None
    shapes = {v.name: _shape(v) for v in [*inferred.graph.value_info, *inferred.graph.output,
                                           *inferred.graph.input]}
    shapes.update({t.name: [int(d) for d in t.dims] for t in inferred.graph.initializer})
    total = 0
    for node in inferred.graph.node:
        count = _node_macs(node, shapes)
        if count is None:
            return None
        total += count
    return total


def _shape(value: Any) -> list[int] | None:
    dims = value.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return [int(d.dim_value) for d in dims]


def _node_macs(node: Any, shapes: dict[str, list[int] | None]) -> int | None:
    """The node's MACs; None when a shape it needs is unknown."""
    if node.op_type not in ("Conv", "Gemm", "MatMul"):
        return 0
    out = shapes.get(node.output[0])
    weight = shapes.get(node.input[1])
    if out is None or weight is None:
        return None
    if node.op_type == "Conv":  # weight: (out_channels, in_channels / group, *kernel)
        return math.prod(out) * math.prod(weight[1:])
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        shared = weight[1] if trans_b else weight[0]
        return math.prod(out) * shared
    first = shapes.get(node.input[0])
    return None if first is None else math.prod(out) * first[-1]
