from record import record

def load_model(path):
    record("onnx.load_model", path=str(path))
    return "onnx-model"
