"""The store's layout: every area posepipe keeps under its store folder, and every lock there, named once.

The store (``~/.cache/posepipe`` unless ``POSEPIPE_STORE`` says otherwise) holds what is costly to
make again and safe to delete: verified blobs, step entries, wheels, logs, records of made images.
The modules that own an area (the blob store, the step cache, the wheelhouse, the image builder,
``gc``) take their paths from here, so ``gc`` finds the areas it bounds (blobs, partial downloads,
steps, failed steps, wheels, logs) where their owners put them, and a lock is the same file for every
process that takes it. The records (bases, vendor, interpreters, pin files) are a few bytes each and
are not collected; ``tmp`` holds only what a running build uses. A lock's docstring says what a second
process waits for.

The package holds the modules that own those areas: ``blobs`` (verified files by sha256), ``fetcher``
(the only way a download enters it), ``lockfile`` (pin files of what was fetched), ``steps`` (the step
cache) and ``gc`` (bounds it all by size and age).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Store:
    root: Path

    # -- areas: each a folder under the root

    @property
    def blobs(self) -> Path:
        """Verified files by sha256 (checkpoints, archives, photos, vendor files): ``blobs/sha256/<hex>``."""
        return self.root / "blobs" / "sha256"

    @property
    def verified(self) -> Path:
        """Each blob's stat fingerprint at its last full hash, so an unchanged blob is not re-hashed."""
        return self.root / "blobs" / "verified"

    @property
    def partial(self) -> Path:
        """Downloads under way (resumable, never read as blobs)."""
        return self.root / "partial"

    @property
    def steps(self) -> Path:
        """Step entries by cache key: ``steps/<key>/`` with outputs/, manifest.json and log.txt."""
        return self.root / "steps"

    @property
    def failed(self) -> Path:
        """Failed steps kept for a look (``build --keep-failed``)."""
        return self.steps / ".failed"

    @property
    def step_tmp(self) -> Path:
        """Step entries being assembled or removed (renamed into or out of ``steps/`` whole)."""
        return self.steps / ".tmp"

    @property
    def wheels(self) -> Path:
        """The wheelhouse: ``wheels/<sha256>/<file>``, downloaded on the host for the images."""
        return self.root / "wheels"

    @property
    def logs(self) -> Path:
        """Each build's step logs: ``logs/<recipe>/``."""
        return self.root / "logs"

    @property
    def bases(self) -> Path:
        """A record per bootstrapped base image (its rootfs digest)."""
        return self.root / "bases"

    @property
    def vendor(self) -> Path:
        """A record per loaded vendor image (its digest after ``docker load``)."""
        return self.root / "vendor"

    @property
    def interpreters(self) -> Path:
        """A supplied CPython's digest with the stat fingerprint it was taken at."""
        return self.root / "interpreters"

    @property
    def tmp(self) -> Path:
        """Scratch on the store's file system (image build contexts, bootstraps), so moves are renames."""
        return self.root / "tmp"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def pins(self, purpose: str) -> Path:
        """The pin file a fetcher for ``purpose`` records fetched URLs, sizes and digests in."""
        return self.root / f"{purpose}.lock"

    # -- locks: one file per thing two processes could make or use at once

    def lock(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    def fetch_lock(self, key: str) -> Path:
        """Held while ``key`` is fetched (so also while its partial download grows)."""
        return self.lock(key)

    def blob_use_lock(self, sha256: str) -> Path:
        """Held shared while a step mounts the blob; gc leaves it alone."""
        return self.lock(f"use-blob-{sha256}")

    def step_lock(self, key: str) -> Path:
        """Held while the step for ``key`` runs and commits."""
        return self.lock(f"step-{key}")

    def step_use_lock(self, key: str) -> Path:
        """Held shared while a build reads the step entry; gc leaves it alone."""
        return self.lock(f"use-{key}")

    def log_use_lock(self, name: str) -> Path:
        """Held shared while a container writes a step log and the step commits it; gc leaves it alone."""
        return self.lock(f"use-log-{name}")

    def image_lock(self, tag: str) -> Path:
        """Held while the image ``tag`` is built or pulled."""
        return self.lock(f"image-{tag.replace('/', '_').replace(':', '_')}")

    def base_lock(self, digest: str) -> Path:
        """Held while the base image with bootstrap settings ``digest`` is made."""
        return self.lock(f"base-{digest}")

    def vendor_lock(self, sha256: str) -> Path:
        """Held while the vendor image file ``sha256`` is loaded."""
        return self.lock(f"vendor-{sha256}")

    def pins_lock(self) -> Path:
        """Held while a pin file is read and rewritten."""
        return self.lock("lockfile")
