import contextlib

class transform:
    @staticmethod
    @contextlib.contextmanager
    def PassContext(opt_level=None):
        yield
