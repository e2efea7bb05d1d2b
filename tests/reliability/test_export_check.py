"""The ONNX Runtime check of an export never passes a model whose outputs are NaN or inf."""

from __future__ import annotations

import torch

from nasapp.engine.results.export import ExportResult, _check, _export_onnx


class _Scaled(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.factor


def test_nan_or_inf_outputs_fail_the_check_and_finite_ones_pass(tmp_path):
    sample = torch.randn(8, 4)
    for factor, expected in ((1.0, True), (float("nan"), False), (float("inf"), False)):
        model = _Scaled(factor).eval()
        path = tmp_path / f"model-{factor}.onnx"
        _export_onnx(model, sample, path, 17)
        passed, worst = _check(model, path, sample)
        assert passed is expected, (factor, worst)
        result = ExportResult(0, tmp_path, path, True, passed, worst)
        assert result.check_text.startswith("PASS" if expected else "FAIL")
