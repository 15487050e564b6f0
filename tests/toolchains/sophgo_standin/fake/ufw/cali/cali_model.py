import os
from record import option, record
images = sorted(os.listdir(option("cali_image_path")))
record("ufw.cali.cali_model", calibration_files=images)
outdir = option("convert_bmodel_cmd_opt").split()[0].removeprefix("-outdir=")
nested = os.path.join(outdir, f"{option('net_name')}_batch1")  # the tool nests its output
os.makedirs(nested, exist_ok=True)
open(os.path.join(nested, "compilation.bmodel"), "w").write(f"stand-in int8 bmodel {option('input_shapes')}\n")
