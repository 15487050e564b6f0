"""Stand-in onnx: the export stand-in writes JSON, not protobuf, so load/save just carry bytes."""

def load(path):
    return open(path, "rb").read()

def save(model, path):
    open(path, "wb").write(model)
