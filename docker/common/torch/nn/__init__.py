"""torch.nn in posepipe's stand-in: the base class the toolkit's GDQ quantiser subclasses at import, which
cannot be made (GDQ needs the real torch)."""

from torch import ABSENT


class Module:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(ABSENT.format("nn.Module"))


def __getattr__(name):
    raise AttributeError(ABSENT.format(f"nn.{name}"))
