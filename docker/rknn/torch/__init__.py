"""posepipe's stand-in for torch in the RKNN image (not PyTorch).

rknn-toolkit2 imports torch when it loads, for its PyTorch front end and its GDQ quantiser; posepipe uses
neither (it gives the toolkit ONNX, and targets cannot choose GDQ). Importing the toolkit touches exactly
``torch.no_grad`` (a decorator) and ``torch.nn.Module`` (a base class); both are here, and anything else of
torch raises, so a code path that would compute with torch fails loudly instead of computing otherwise.
Builds with it and with the real torch 2.4.0 gave identical simulator outputs (docs/toolchains.md).
"""

__version__ = "0.0.0+posepipe.stand.in"
ABSENT = "posepipe's RKNN image has no torch (a stand-in for rknn-toolkit2's import): torch.{} is not available"


class no_grad:  # noqa: N801 - torch's name
    """torch.no_grad as the toolkit uses it at import: a decorator (and a context manager) that changes nothing."""

    def __call__(self, function):
        return function

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def __getattr__(name):
    raise AttributeError(ABSENT.format(name))
