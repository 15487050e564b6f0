"""Pick a recipe's calibration images out of the fetched archive, once for all INT8 targets.

Members matching the recipe's glob are sorted by name; the first `count` are the calibration
set, written to /out/calibration/, and the next `held_out` go to /out/held_out/ for accuracy
gates (<index><suffix> each). /out/list.json names each file's source member and sha256, so
every toolchain reads the same images in the same order and a manifest can say which they were.
A vendor tool that takes a folder of calibration images is given /in/calibration/calibration.
Inputs: /in/params.json, /in/archive (zip or tar). Output: /out/calibration/, /out/held_out/, /out/list.json.
"""

import fnmatch
import hashlib
import json
import tarfile
import zipfile
from pathlib import Path

from posepipe_step import PARAMS as params, fail

archive = Path("/in/archive")


def members():
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in sorted(z.namelist()):
                if fnmatch.fnmatch(name, params["select"]):
                    yield name, z.read(name)
    else:
        with tarfile.open(archive) as t:
            for m in sorted((m for m in t.getmembers() if m.isfile()), key=lambda m: m.name):
                if fnmatch.fnmatch(m.name, params["select"]):
                    yield m.name, t.extractfile(m).read()


want = params["count"] + params["held_out"]
picked = []
for folder in ("calibration", "held_out"):
    (Path("/out") / folder).mkdir()
for i, (name, data) in enumerate(members()):
    if i == want:
        break
    local = f"{'calibration' if i < params['count'] else 'held_out'}/{i:06d}{Path(name).suffix.lower()}"
    (Path("/out") / local).write_bytes(data)
    picked.append({"file": local, "member": name, "sha256": hashlib.sha256(data).hexdigest()})
if len(picked) < params["count"]:
    fail(f"the archive has {len(picked)} member(s) matching {params['select']!r}; the recipe needs {params['count']}")
listing = {"select": params["select"], "calibration": picked[: params["count"]], "held_out": picked[params["count"]:]}
(Path("/out") / "list.json").write_text(json.dumps(listing, indent=1) + "\n")
print(f"calibration: {len(listing['calibration'])} image(s), {len(listing['held_out'])} held out", flush=True)
