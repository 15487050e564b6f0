from record import record

class _Model:
    def eval(self):
        return self

class jit:
    @staticmethod
    def load(path):
        record("torch.jit.load", path=str(path), exists=__import__("os").path.isfile(path))
        return _Model()
