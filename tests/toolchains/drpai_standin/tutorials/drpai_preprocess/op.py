class _Op:
    def __init__(self, *args):
        self.args = list(args)

    def __repr__(self):
        return f"{type(self).__name__}{tuple(self.args)}"

class Crop(_Op):
    pass

class Resize(_Op):
    BILINEAR = "BILINEAR"

class Normalize(_Op):
    pass
