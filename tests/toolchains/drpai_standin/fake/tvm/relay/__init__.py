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


class _Lib:
    def export_library(self, path, fcompile=None):
        record("lib.export_library", path=str(path), fcompile=fcompile)
        open(path, "wb").write(b"\x7fELF stand-in")

    def get_graph_json(self):
        return "{\"stand-in\": true}"

    def get_params(self):
        return {}


def build(mod, target=None, params=None):
    record("relay.build", target=target)
    return _Lib()


def save_param_dict(params):
    return b"stand-in params"
