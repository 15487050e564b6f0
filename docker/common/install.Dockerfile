ARG BASE_IMAGE
# The install steps every toolchain with locked wheels shares: posepipe writes them before the toolchain's own
# Dockerfile (pipelines/edges/containers/images.py). The CPython posepipe supplies when the toolchain names one (copied to
# /opt/python<minor>: its RUNPATH names the prefix it was built in, so LD_LIBRARY_PATH finds its libpython),
# then a venv installed from the host-filled, hash-locked wheelhouse only. The wheels never enter a layer: posepipe
# serves them on 127.0.0.1 for the build's length (WHEELS; the build runs on the host's network for that) and pip
# takes nothing else (--no-index, every file checked against the lock's sha256). So the image is one stage and
# its venv is written once. A toolchain's Dockerfile goes on from here.
FROM ${BASE_IMAGE}
ARG WHEELS
@INTERPRETER@COPY requirements.lock /opt/posepipe/requirements.lock
RUN @PYTHON@ -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps --require-hashes --progress-bar off \
      --find-links ${WHEELS} -r /opt/posepipe/requirements.lock
