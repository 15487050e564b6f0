from record import record

class frontend:
    @staticmethod
    def from_pytorch(model, shape_list):
        record("relay.frontend.from_pytorch", shape_list=shape_list)
        return "mod", {"weights": 1}

    @staticmethod
    def from_onnx(model, shape_dict):
        record("relay.frontend.from_onnx", shape_dict=shape_dict)
        return "mod", {"weights": 1}
