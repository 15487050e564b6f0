"""posepipe's torch stand-in (docker/common/torch): what converters' imports touch works, anything else fails loudly."""

from __future__ import annotations

import subprocess
import sys

from pipelines.core.layout import REPO_ROOT

PROBE = """
import torch

@torch.no_grad()
def f(x):
    return x + 1

with torch.no_grad():
    assert f(1) == 2
class Quantiser(torch.nn.Module):  # a base class at import, as rknn-toolkit2's GDQ has
    pass
class Stft(torch.autograd.Function):  # and onnxruntime_extensions' Whisper converter (TPU-MLIR imports it)
    pass
def forward(audio: torch.Tensor):  # an annotation
    pass
for attempt in (lambda: torch.tensor([1.0]), lambda: torch.nn.Conv2d, lambda: Quantiser(), lambda: torch.jit.load("m.pt"),
                lambda: Stft.apply(1), lambda: torch.Tensor([1.0]), lambda: torch.autograd.grad):
    try:
        attempt()
    except (AttributeError, RuntimeError) as e:
        print(e)
    else:
        raise SystemExit("the stand-in computed something")
"""


def test_the_stand_in_imports_and_refuses_anything_else():
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO_ROOT / "docker" / "common")})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert [line.rsplit("torch.", 1)[1] for line in lines] == [
        "tensor is not available", "nn.Conv2d is not available", "nn.Module is not available", "jit is not available",
        "autograd.Function is not available", "Tensor is not available", "autograd.grad is not available"]
    assert all(line.startswith("this posepipe image has no torch") for line in lines)
