import os
import sys
sys.path.insert(0, "/opt/fakevendor")
from record import record

class Config:
    pass

FILES = ("aimac_desc.bin", "drp_desc.bin", "drp_param.bin", "drp_param_info.txt", "pp_drpcfg.mem", "pp_weight.dat", "pp_addrmap_intm.txt")

def PreRuntime(config, out_dir, product):
    fields = dict(vars(config))
    fields["ops"] = [{"op": type(o).__name__, "args": o.args} for o in config.ops]
    record("PreRuntime", config=fields, out_dir=out_dir, product=product)
    open("addr_map.yaml", "w").write("stand-in\n")  # the real one writes into the working folder
    os.makedirs(out_dir, exist_ok=True)
    for name in FILES:
        open(os.path.join(out_dir, name), "w").write("stand-in\n")
