ARG BASE_IMAGE
# The install stage every toolchain with locked wheels shares: posepipe writes it before the toolchain's own
# Dockerfile (pipelines/edges/containers/images.py). The CPython posepipe supplies when the toolchain names one (copied to
# /opt/python<minor>: its RUNPATH names the prefix it was built in, so LD_LIBRARY_PATH finds its libpython),
# then a venv installed from the host-filled, hash-locked wheelhouse only. A toolchain's Dockerfile goes on
# from here (more install steps, if any) and starts its final stage, which copies /opt/venv (and the
# interpreter) out of `install`, so the wheels add no layer to the image.
FROM ${BASE_IMAGE} AS install
@INTERPRETER@COPY requirements.lock /opt/posepipe/requirements.lock
COPY wheels/ /opt/posepipe/wheels/
RUN @PYTHON@ -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps --require-hashes \
      --find-links /opt/posepipe/wheels -r /opt/posepipe/requirements.lock
