"""The prebuilt spaces (mnasnet, nb201, mlp): spaces, model builders, scale and the NB201 string form."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from nasapp.engine.errors import NasappError, SpaceError
from nasapp.engine.spaces import mlp, mnasnet, nb201
from nasapp.engine.spaces.nb201 import from_nb201_string, to_nb201_string
from nasapp.engine.spaces.prebuilt import Prebuilt, get_prebuilt, list_prebuilt
from nasapp.engine.spaces.scale import make_divisible, normalize_scale, scale_channels, scale_count

torch = pytest.importorskip("torch")

NB201_CSV = Path(__file__).resolve().parents[1].parent / "shared/benchmarks/nb201_cifar10.csv"

# (space, input shape, small scale) used to build and train-step sampled architectures
SMALL = {
    "mnasnet": ((1, 8, 8), {"width": 0.25, "depth": 0.5}),
    "nb201": ((3, 8, 8), {"width": 0.5, "depth": 0.2}),
    "mlp": ((12,), {"width": 0.5}),
}
SEEDS = range(5)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def train_step(model, input_shape, num_classes=10, batch=4):
    x = torch.randn(batch, *input_shape)
    out = model(x)
    assert out.shape == (batch, num_classes)
    loss = torch.nn.functional.cross_entropy(out, torch.randint(0, num_classes, (batch,)))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, "no parameter received a gradient"
    for g in grads:
        assert torch.isfinite(g).all()
    return out


# -- registry -----------------------------------------------------------------------------------------------


def test_registry_lists_the_three_spaces():
    prebuilt = list_prebuilt()
    assert [p.name for p in prebuilt] == ["mlp", "mnasnet", "nb201"]
    for p in prebuilt:
        assert isinstance(p, Prebuilt)
        assert get_prebuilt(p.name) is p
        assert p.kind in ("vision", "tabular")
        assert p.description and "\n" not in p.description
        assert callable(p.build)
    assert get_prebuilt("mnasnet").kind == "vision"
    assert get_prebuilt("nb201").kind == "vision"
    assert get_prebuilt("mlp").kind == "tabular"
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_prebuilt("mlp").name = "other"  # type: ignore[misc]


def test_unknown_prebuilt_name():
    with pytest.raises(NasappError) as err:
        get_prebuilt("resnet")
    assert str(err.value) == "unknown space 'resnet'; prebuilt spaces: mlp, mnasnet, nb201"


def test_space_modules_import_without_torch():
    code = ("import sys; import nasapp.engine.spaces.prebuilt as p; "
            "print(len(p.list_prebuilt()), 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "False"]  # the three spaces listed, torch never imported


# -- sizes --------------------------------------------------------------------------------------------------


def test_space_sizes():
    size = mnasnet.SPACE.size()
    print(f"mnasnet space size: {size} (~{size:.2e})")
    assert size > 10**13
    assert size == (5 * 3 * 2 * 2 * 3 * 3) ** 7
    assert nb201.SPACE.size() == 5**6 == 15_625
    assert mlp.SPACE.size() == (4 + 4**2 + 4**3 + 4**4) * 4 * 3 * 4


# -- sampled architectures build, run forward/backward -----------------------------------------------------


@pytest.mark.parametrize("name", ["mnasnet", "nb201", "mlp"])
def test_sampled_archs_build_and_train(name):
    p = get_prebuilt(name)
    input_shape, scale = SMALL[name]
    for seed in SEEDS:
        arch = p.space.sample(seed)
        p.space.validate(arch)
        assert p.space.sample(seed) == arch
        model = p.build(arch, input_shape, 10, scale)
        assert isinstance(model, torch.nn.Module)
        train_step(model, input_shape)


def test_mlp_flattens_images():
    p = get_prebuilt("mlp")
    for seed in SEEDS:
        model = p.build(p.space.sample(seed), (1, 8, 8), 10, {"width": 0.25})
        assert model.body[0].in_features == 64  # 1 x 8 x 8, flattened
        assert train_step(model, (1, 8, 8)).shape == (4, 10)


@pytest.mark.parametrize("name", ["mnasnet", "nb201"])
def test_vision_spaces_reject_tabular_input(name):
    p = get_prebuilt(name)
    with pytest.raises(NasappError, match="needs image inputs"):
        p.build(p.space.sample(0), (12,), 10, None)


def test_build_rejects_invalid_arch():
    p = get_prebuilt("mnasnet")
    arch = p.space.sample(0)
    arch["blocks"][3]["kernel"] = 9
    with pytest.raises(SpaceError, match=r"blocks\[3\]\.kernel"):
        p.build(arch, (1, 8, 8), 10, None)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 5, 7), (3, 224, 224)])
def test_mnasnet_input_sizes(shape):
    p = get_prebuilt("mnasnet")
    model = p.build(p.space.sample(1), shape, 7, {"width": 0.25, "depth": 0.5}).eval()
    with torch.no_grad():
        assert model(torch.randn(1, *shape)).shape == (1, 7)


def test_mnasnet_small_inputs_keep_a_2x2_map():
    p = get_prebuilt("mnasnet")
    model = p.build(p.space.sample(2), (1, 8, 8), 10, {"width": 0.25, "depth": 0.5})
    sizes = []
    model.head.register_forward_pre_hook(lambda _m, args: sizes.append(tuple(args[0].shape[2:])))
    model(torch.randn(2, 1, 8, 8))
    assert sizes == [(2, 2)]


def test_mnasnet_identity_skip_only_where_shapes_match():
    p = get_prebuilt("mnasnet")
    arch = p.space.sample(3)
    for block in arch["blocks"]:
        block["skip"] = "identity"
    model = p.build(arch, (3, 32, 32), 10, None)
    from nasapp.engine.spaces.mnasnet_model import Layer

    layers = [m for m in model.modules() if isinstance(m, Layer)]
    first_of_block = {id(block[0]) for block in model.blocks}
    for layer in layers:
        if id(layer) not in first_of_block:
            assert layer.residual  # later layers of a block: stride 1, same channels
    # the first layer of a stride-2 block, or of one that changes channels, never adds the input
    assert not model.blocks[1][0].residual
    arch["blocks"][1]["skip"] = "none"
    model = p.build(arch, (3, 32, 32), 10, None)
    assert not any(layer.residual for layer in model.blocks[1])


def test_mnasnet_ops_structure():
    from nasapp.engine.spaces.mnasnet_model import Layer, SqueezeExcite

    base = {"kernel": 5, "se": 0.25, "skip": "none", "filters": 1.0, "layer_delta": 0}
    for op in mnasnet.OPS:
        arch = {"blocks": [dict(base, op=op) for _ in range(7)]}
        model = mnasnet.build(arch, (3, 32, 32), 10, None)
        first = model.blocks[0][0]
        assert isinstance(first, Layer)
        convs = [m for m in first.modules() if isinstance(m, torch.nn.Conv2d)]
        depthwise = [c for c in convs if c.groups > 1]
        expected_convs = {"conv": 1, "dwconv": 2, "mbconv1": 2, "mbconv3": 3, "mbconv6": 3}[op]
        assert len(convs) == expected_convs
        assert len(depthwise) == (0 if op == "conv" else 1)
        if op.startswith("mbconv"):
            assert depthwise[0].in_channels == 32 * int(op[-1])
        assert any(isinstance(m, SqueezeExcite) for m in first.modules())
        assert {c.kernel_size for c in convs} - {(1, 1)} == {(5, 5)}
    arch = {"blocks": [dict(base, op="mbconv6", se=0.0) for _ in range(7)]}
    assert not any(isinstance(m, SqueezeExcite) for m in mnasnet.build(arch, (3, 32, 32), 10).modules())


def test_mnasnet_layer_counts_follow_arch_and_depth():
    base = {"op": "mbconv3", "kernel": 3, "se": 0.0, "skip": "identity", "filters": 1.0}
    for delta in (-1, 0, 1):
        arch = {"blocks": [dict(base, layer_delta=delta) for _ in range(7)]}
        model = mnasnet.build(arch, (3, 32, 32), 10, None)
        assert [len(b) for b in model.blocks] == [max(1, n + delta) for n in mnasnet.BASE_LAYERS]
        model = mnasnet.build(arch, (3, 32, 32), 10, {"depth": 0.5})
        assert [len(b) for b in model.blocks] == [math.ceil(max(1, n + delta) * 0.5)
                                                 for n in mnasnet.BASE_LAYERS]


def test_mnasnet_trims_kernels_that_only_see_padding():
    arch = {"blocks": [{"op": "dwconv", "kernel": 7, "se": 0.0, "skip": "none", "filters": 1.0,
                        "layer_delta": 0} for _ in range(7)]}
    small = mnasnet.build(arch, (1, 8, 8), 10, {"width": 0.25})
    big = mnasnet.build(arch, (3, 224, 224), 10, {"width": 0.25})
    small_kernels = [c.kernel_size[0] for c in small.blocks.modules()
                     if isinstance(c, torch.nn.Conv2d) and c.groups > 1]
    big_kernels = {c.kernel_size[0] for c in big.blocks.modules()
                   if isinstance(c, torch.nn.Conv2d) and c.groups > 1}
    # block 1 sees a 4x4 map, block 2 starts on it and halves it, everything after sees 2x2
    assert small_kernels[:2] == [7, 7] and set(small_kernels[2:]) == {3}
    assert big_kernels == {7}


# -- scale --------------------------------------------------------------------------------------------------


def test_normalize_scale():
    assert normalize_scale(None) == {"width": 1.0, "depth": 1.0, "resolution": None}
    assert normalize_scale({"width": 0.5}) == {"width": 0.5, "depth": 1.0, "resolution": None}
    assert normalize_scale({"depth": 2, "resolution": 32}) == {"width": 1.0, "depth": 2.0, "resolution": 32}
    for bad in ({"width": 0}, {"depth": -1.0}, {"width": "wide"}, {"resolution": 0}, {"resolution": 3.5},
                {"height": 1.0}, [1.0]):
        with pytest.raises(NasappError, match="scale"):
            normalize_scale(bad)


def test_scale_arithmetic():
    assert scale_channels(32, 1.0) == 32
    assert scale_channels(32, 0.25) == 8
    assert scale_channels(16, 0.25) == 8  # never below 8
    assert scale_channels(40, 0.75) == 32
    assert all(make_divisible(v) % 8 == 0 and make_divisible(v) >= 0.9 * v for v in range(1, 500))
    assert scale_count(4, 0.5) == 2 and scale_count(3, 0.5) == 2 and scale_count(1, 0.1) == 1
    assert scale_count(5, 1.0) == 5 and scale_count(2, 2.0) == 4


def test_mnasnet_width_scales_channels():
    arch = mnasnet.SPACE.sample(4)
    full = mnasnet.build(arch, (3, 32, 32), 10, None)
    half = mnasnet.build(arch, (3, 32, 32), 10, {"width": 0.5})
    assert full.stem[0].out_channels == 32 and half.stem[0].out_channels == 16
    assert full.head[0][0].out_channels == 1280 and half.head[0][0].out_channels == 640
    for b_full, b_half, block, base in zip(full.blocks, half.blocks, arch["blocks"], mnasnet.BASE_WIDTHS,
                                           strict=True):
        out_full = [m for m in b_full.modules() if isinstance(m, torch.nn.Conv2d)][-1].out_channels
        out_half = [m for m in b_half.modules() if isinstance(m, torch.nn.Conv2d)][-1].out_channels
        assert out_full == scale_channels(base * block["filters"], 1.0)
        assert out_half == scale_channels(base * block["filters"], 0.5)
    assert n_params(half) < 0.5 * n_params(full)
    shallow = mnasnet.build(arch, (3, 32, 32), 10, {"depth": 0.5})
    assert n_params(shallow) < n_params(full)


def test_nb201_width_and_depth_scale():
    arch = from_nb201_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                             "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    from nasapp.engine.spaces.nb201_model import Cell, ResNetBasicBlock

    full = nb201.build(arch, (3, 32, 32), 10, None)
    assert full.stem[0].out_channels == 16
    assert sum(isinstance(m, Cell) for m in full.modules()) == 15
    assert [m.conv_b[1].out_channels for m in full.modules() if isinstance(m, ResNetBasicBlock)] == [32, 64]
    assert full.classifier.in_features == 64
    small = nb201.build(arch, (3, 32, 32), 10, {"width": 0.5, "depth": 0.4})
    assert small.stem[0].out_channels == 8
    assert sum(isinstance(m, Cell) for m in small.modules()) == 6
    assert small.classifier.in_features == 32
    assert n_params(small) < n_params(full) / 4
    wide = nb201.build(arch, (3, 32, 32), 10, {"width": 2.0})
    assert wide.classifier.in_features == 128


def test_nb201_matches_the_benchmark_parameter_range():
    # NAS-Bench-201's CIFAR-10 networks range from 0.07 M (no convolutions) to 1.53 M (all nor_conv_3x3)
    def millions(op):
        return n_params(nb201.build({key: op for key in nb201.EDGE_KEYS}, (3, 32, 32), 10, None)) / 1e6

    assert round(millions("none"), 2) == round(millions("avg_pool_3x3"), 2) == 0.07
    assert round(millions("nor_conv_3x3"), 2) == 1.53


NB201_PARAMS_CSV = NB201_CSV.parent / "nb201_reference_params.csv"
DEAD_EDGES = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def nb201_params(ops: list[str], classes: int = 10, c: int = 16, n: int = 5) -> int:
    """The parameter count of NAS-Bench-201's network for a cell, counted by hand: stem conv + BN, three stages
    of n cells (every edge but none built; ReLU-Conv-BN has a conv and BN's weight and bias), two residual
    reduction blocks (two 3x3 ReLU-Conv-BN and a 1x1 shortcut conv), the last BN and the classifier."""
    def cell(width: int) -> int:
        per_op = {"nor_conv_3x3": 9 * width * width + 2 * width, "nor_conv_1x1": width * width + 2 * width}
        return sum(per_op.get(op, 0) for op in ops)

    def reduction(cin: int, cout: int) -> int:
        return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout + cin * cout

    total = 3 * c * 9 + 2 * c + n * (cell(c) + cell(2 * c) + cell(4 * c))
    total += reduction(c, 2 * c) + reduction(2 * c, 4 * c)
    return total + 2 * 4 * c + 4 * c * classes + classes


@pytest.mark.skipif(not NB201_PARAMS_CSV.is_file(), reason="the shared NAS-Bench-201 reference is not here")
def test_nb201_networks_have_the_benchmarks_parameter_count_for_every_cell():
    """All 15,625 cells against the benchmark authors' own count: by hand for every row, and the builder
    against the hand count on a sample that includes cells with dead edges (they are built, as the
    benchmark builds them)."""
    import csv

    with open(NB201_PARAMS_CSV) as f:
        reference = {row["arch"]: int(row["params"]) for row in csv.DictReader(f)}
    assert len(reference) == 15_625
    wrong = [a for a, n in reference.items() if nb201_params(nb201.arch_ops(from_nb201_string(a))) != n]
    assert not wrong, f"{len(wrong)} cells differ, e.g. {wrong[:3]}"
    sample = [DEAD_EDGES, *sorted(reference)[::1000]]
    for text in sample:
        model = nb201.build(from_nb201_string(text), (3, 32, 32), 10, None)
        assert n_params(model) == reference[text], text
    assert reference[DEAD_EDGES] == 1_045_466


def test_a_node_without_input_is_zero_and_its_edges_still_compute():
    """In the dead-edge example node 1 gets nothing (none~0); the edges leaving it still run on zeros, as in
    the benchmark's network, so the output carries their BatchNorm shift."""
    from nasapp.engine.spaces.nb201_model import Cell

    torch.manual_seed(0)
    cell = Cell(nb201.arch_ops(from_nb201_string(DEAD_EDGES)), 4).eval()
    assert len(cell.ops) == 5  # every edge but the none
    assert cell.edges[1] == (2, 1)
    conv_from_zero = cell.ops[1]  # nor_conv_3x3~1 into node 2: its input is the zero node 1
    with torch.no_grad():
        conv_from_zero[2].bias.fill_(0.5)
        x = torch.randn(2, 4, 6, 6)
        shift = conv_from_zero(x * 0.0)
        assert torch.allclose(shift, shift.flatten()[0].expand_as(shift))  # BN's shift, the same everywhere
        assert shift.abs().max() > 0.1
        assert torch.isfinite(cell(x)).all()


def test_mnasnet_b1_baseline_is_torchvisions_mnasnet1_0():
    """torchvision's mnasnet1_0 (MnasNet-B1) has 4,383,312 parameters and 314.4 M multiply-accumulates at 224x224
    with 1,000 classes (its model table says 0.31 GFLOPs, the MnasNet paper 312 M): the space's baseline too."""
    from nasapp.engine.latency.profile import model_profile

    arch = mnasnet.BASELINES["mnasnet-b1"]
    mnasnet.SPACE.validate(arch)
    model = mnasnet.build(arch, (3, 224, 224), 1000, None)
    assert model_profile(model, torch.zeros(1, 3, 224, 224)) == {"macs": 314_415_872, "flops": 628_831_744,
                                                                  "params": 4_383_312}


def test_nb201_all_none_cell_still_runs():
    arch = {key: "none" for key in nb201.EDGE_KEYS}
    model = nb201.build(arch, (3, 8, 8), 10, {"width": 0.5, "depth": 0.2})
    out = train_step(model, (3, 8, 8))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_mlp_scale():
    arch = {"widths": [64, 128, 32], "activation": "gelu", "norm": "layer", "dropout": 0.1}
    full = mlp.build(arch, (12,), 3, None)
    linears = [m for m in full.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 64), (64, 128), (128, 32), (32, 3)]
    half = mlp.build(arch, (12,), 3, {"width": 0.5, "depth": 0.5})
    linears = [m for m in half.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [32, 64, 3]
    deep = mlp.build(arch, (12,), 3, {"depth": 2.0})
    assert [m.out_features for m in deep.modules() if isinstance(m, torch.nn.Linear)] == \
        [64, 64, 128, 128, 32, 32, 3]
    assert mlp.build(arch, (12,), 3, {"resolution": 4}).body[0].in_features == 12  # ignored for (F,)
    assert mlp.build(arch, (1, 8, 8), 3, {"resolution": 4}).body[0].in_features == 16


@pytest.mark.parametrize("name", ["mnasnet", "nb201", "mlp"])
def test_resolution_resizes_input_and_keeps_output_shape(name):
    p = get_prebuilt(name)
    shape = (1, 8, 8)
    scale = dict(SMALL[name][1], resolution=16)
    model = p.build(p.space.sample(0), shape, 10, scale)
    seen = []
    first = model.stem if name != "mlp" else model.body
    first.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    train_step(model, shape)
    if name == "mlp":
        assert seen[0] == (4, 256)  # flattened 1 x 16 x 16
    else:
        assert seen[0][-2:] == (16, 16)


@pytest.mark.parametrize("name", ["mnasnet", "nb201"])
def test_channels_last(name):
    p = get_prebuilt(name)
    shape = (3, 16, 16)
    model = p.build(p.space.sample(5), shape, 10, SMALL[name][1]).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mnasnet", "nb201", "mlp"])
def test_onnx_export_matches_torch(name):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    p = get_prebuilt(name)
    shape = (1, 8, 8) if name != "mlp" else (12,)
    model = p.build(p.space.sample(6), shape, 10, dict(SMALL[name][1], resolution=12)).eval()
    x = torch.randn(2, *shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"], output_names=["y"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), model(x), rtol=1e-4, atol=1e-5)


# -- NAS-Bench-201 string form ------------------------------------------------------------------------------

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_nb201_string_example():
    arch = from_nb201_string(EXAMPLE)
    assert arch == {"1<-0": "nor_conv_3x3", "2<-0": "nor_conv_3x3", "2<-1": "avg_pool_3x3",
                    "3<-0": "skip_connect", "3<-1": "nor_conv_3x3", "3<-2": "skip_connect"}
    assert list(arch) == list(nb201.EDGE_KEYS)
    assert to_nb201_string(arch) == EXAMPLE
    nb201.SPACE.validate(arch)


def test_nb201_every_enumerated_arch_round_trips():
    archs = list(nb201.SPACE.enumerate())
    assert len(archs) == 15_625
    strings = {to_nb201_string(arch) for arch in archs}
    assert len(strings) == 15_625
    for arch in archs:
        assert from_nb201_string(to_nb201_string(arch)) == arch


def test_nb201_benchmark_file_round_trips():
    if not NB201_CSV.exists():
        pytest.skip(f"benchmark file {NB201_CSV} is absent")
    with NB201_CSV.open(newline="") as f:
        strings = [row["arch"] for row in csv.DictReader(f)]
    assert len(strings) == 15_625
    archs = set()
    for s in strings:
        arch = from_nb201_string(s)
        nb201.SPACE.validate(arch)
        assert to_nb201_string(arch) == s
        archs.add(nb201.SPACE.fingerprint(arch))
    assert len(archs) == 15_625


@pytest.mark.parametrize(("text", "problem"), [
    ("", "3 nodes"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 nodes"),
    (EXAMPLE.replace("avg_pool_3x3", "max_pool_3x3"), "unknown operation 'max_pool_3x3'"),
    (EXAMPLE.replace("avg_pool_3x3~1", "avg_pool_3x3~2"), "must come from node 1"),
    (EXAMPLE.replace("|skip_connect~2|", "|"), "node 3 must have 3 incoming edge"),
    (EXAMPLE.replace("nor_conv_3x3~0|+", "nor_conv_3x3|+", 1), "must be 'op~input'"),
    (EXAMPLE[1:], "node 1"),
    (42, "must be a string"),
])
def test_nb201_bad_strings(text, problem):
    with pytest.raises(NasappError, match="^(bad NAS-Bench-201 string|NAS-Bench-201 string)") as err:
        from_nb201_string(text)
    assert problem in str(err.value)


def test_to_nb201_string_rejects_invalid_arch():
    arch = from_nb201_string(EXAMPLE)
    arch["2<-1"] = "sep_conv_3x3"
    with pytest.raises(SpaceError):
        to_nb201_string(arch)
