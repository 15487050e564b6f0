"""torch.autograd in posepipe's stand-in: the base class onnxruntime_extensions' Whisper converter subclasses at
import (TPU-MLIR imports that package), which cannot be used (it needs the real torch)."""

from torch import ABSENT


class Function:
    @classmethod
    def apply(cls, *args, **kwargs):
        raise RuntimeError(ABSENT.format("autograd.Function"))


def __getattr__(name):
    raise AttributeError(ABSENT.format(f"autograd.{name}"))
