import os
from record import record

def build(mod, params, arch, drp_config_runtime, output_dir=None, disable_concat=False):
    record("drp.build", arch=arch, config=drp_config_runtime, output_dir=output_dir, disable_concat=disable_concat)
    pp = os.path.join(drp_config_runtime["toolchain_dir"], "output", "pp")
    os.makedirs(pp, exist_ok=True)  # the real Translator writes into its own folder
    open(os.path.join(pp, "stamp"), "w").write("x")
    for name in ("deploy.so", "deploy.json", "deploy.params"):
        open(os.path.join(output_dir, name), "w").write(f"stand-in {name}\n")
