"""posepipe's stand-in for torch (not PyTorch), for converters that import torch but, given ONNX, never compute with it.

rknn-toolkit2 imports torch when it loads, for its PyTorch front end and its GDQ quantiser; TPU-MLIR's ONNX
optimiser and calibrators import it at module level for their PyTorch front end, custom-op and debug paths.
posepipe uses none of these (it gives both ONNX; targets cannot choose GDQ). What those imports touch is here:
``torch.no_grad`` (a decorator), ``torch.nn.Module`` and ``torch.autograd.Function`` (base classes) and
``torch.Tensor`` (an annotation), none of which can compute; anything else of torch raises, so a
code path that would compute with torch fails loudly instead of computing otherwise. PyPI's torch brings
~3 GB of CUDA libraries a CPU never loads. Builds with it and with the real torch gave identical outputs
(docs/toolchains.md). A toolchain lists ``torch`` under ``shared:`` and copies it into its venv.
"""

__version__ = "0.0.0+posepipe.stand.in"
ABSENT = "this posepipe image has no torch (a stand-in for its converter's import): torch.{} is not available"


class no_grad:  # noqa: N801 - torch's name
    """torch.no_grad as the toolkit uses it at import: a decorator (and a context manager) that changes nothing."""

    def __call__(self, function):
        return function

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Tensor:
    """torch.Tensor as annotations name it at import (onnxruntime_extensions, which TPU-MLIR imports); none can be made."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(ABSENT.format("Tensor"))


def __getattr__(name):
    raise AttributeError(ABSENT.format(name))


from torch import autograd, nn  # noqa: E402 - attributes after a plain `import torch`, as the real package has them
