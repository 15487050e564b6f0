"""posepipe's command line: thin Invoke tasks over the `pipelines` package.

Each task parses its arguments and calls one function; all logic lives in
`pipelines`. The same collection is `invoke ...` in a checkout (the root tasks.py) and the
installed `posepipe ...` command (``program.py``). Exit codes are listed in README.md.
"""

import sys
from pathlib import Path

import functools

from invoke import Collection
from invoke import task as invoke_task

from pipelines.cli.adapter import HelpfulTask, command, required, whole_number
from pipelines.commands import build as building
from pipelines.commands import clean as cleaning
from pipelines.commands import download as downloading
from pipelines.commands import evaluate as evaluating
from pipelines.commands import fetch as fetching
from pipelines.commands import gc as collecting
from pipelines.commands import images as imaging
from pipelines.commands import keys as keying
from pipelines.commands import lock as locking
from pipelines.commands import matrix as matrixing
from pipelines.commands import predict as predicting
from pipelines.commands import publish as publishing
from pipelines.commands import validate as validating
from pipelines.core.layout import layout

RECIPE = "Recipe name: a file recipes/<name>.yaml"
TARGET = "Target id inside the recipe (default: every target)"
task = functools.partial(invoke_task, klass=HelpfulTask)
CACHE = ("Share steps and images through this OCI registry, oci://HOST[:PORT]/NAMESPACE (default: $POSEPIPE_CACHE, "
         "else `cache:` in ~/.config/posepipe/config.yaml; credentials: docker login HOST)")
CACHE_READ_ONLY = "Use the remote cache but never push to it (also $POSEPIPE_CACHE_READ_ONLY=1)"
MAX_DOWNLOAD = "Cap on a download whose size is not known, e.g. 8G (default: 4G checkpoints, 64G calibration archives)"


@task(
    iterable=["recipe"],
    help={"recipe": "Recipe to validate; repeat for several (default: all recipes)"},
)
@command
def validate(c, recipe=None):
    """Validate recipes against the recipe schema and the board tables."""
    validating.validate(layout(), recipe or None)


@task(
    name="list",
    iterable=["recipe"],
    help={"recipe": "Only this recipe; repeat for several (default: all)"},
)
@command
def list_(c, recipe=None):
    """List every recipe x target with its toolchain and whether it can build here."""
    validating.list_targets(layout(), recipe or None)


@task(
    help={
        "recipe": RECIPE,
        "target": TARGET,
        "no_cache": "Run every step even when the step cache has its result",
        "keep_failed": "Keep a failed step's container and print how to enter it",
        "jobs": "Steps to run in parallel (default: number of cores)",
        "locked": "Refuse inputs whose full sha256 is not in recipes/checkpoints.lock",
        "offline": "Use only the local store; never touch the network",
        "no_progress": "Plain log lines instead of a progress bar",
        "check": "Run every step again (even cached ones) and record in the manifests which files differ",
        "memory": "Memory limit per step container, e.g. 8g (default: none)",
        "cpus": "CPU limit per step container, e.g. 1.5 (default: none)",
        "verbose": "Stream every step's output and image builds here (always kept in the step's log file)",
        "max_download": MAX_DOWNLOAD,
        "cache": CACHE,
        "cache_read_only": CACHE_READ_ONLY,
    }
)
@command
def build(
    c, recipe=None, target=None, no_cache=False, keep_failed=False, jobs=0, locked=False, offline=False,
    no_progress=False, check=False, memory=None, cpus=None, verbose=False, max_download=None, cache=None,
    cache_read_only=False,
):
    """Build a recipe's targets in Docker; each artifact's manifest labels it by the checks that passed."""
    request = building.BuildRequest(
        required(recipe, "--recipe"), target, no_cache=no_cache, keep_failed=keep_failed, jobs=jobs,
        locked=locked, offline=offline, progress=not no_progress, check=check, memory=memory,
        cpus=float(cpus) if cpus else None, verbose=verbose, max_download=max_download, cache=cache,
        cache_read_only=cache_read_only,
    )
    building.build(layout(), request)


@task(
    help={
        "recipe": RECIPE,
        "target": "The target whose artifact runs (it is built first if it is not yet)",
        "image": "The photo to run it on (JPEG or PNG)",
        "box": "x,y,w,h: the person's (or face's, hand's) box in photo pixels (default: the whole photo)",
        "out": "Where to write the photo with the keypoints drawn (.png or .jpg; the keypoints go beside it as .json)",
        "compare": "Also run the FP32 export on the same crop and draw its keypoints as rings beside the target's",
        "offline": "Use only the local store; never touch the network",
        "no_progress": "Plain log lines instead of a progress bar",
        "verbose": "Stream every step's output here (always kept in the step's log file)",
        "cache": CACHE,
    }
)
@command
def predict(c, recipe=None, target=None, image=None, box=None, out="vis.png", compare=False, offline=False, no_progress=False,
            verbose=False, cache=None):
    """Run one target's artifact on a photo in its toolchain's image and draw its keypoints on it."""
    request = building.BuildRequest(required(recipe, "--recipe"), required(target, "--target"), offline=offline,
                                    progress=not no_progress, verbose=verbose, cache=cache)
    predicting.predict(layout(), request, Path(required(image, "--image")), Path(out), box, compare)


@task(
    iterable=["target"],
    help={
        "recipe": RECIPE,
        "target": "Target to score; repeat for several (default: every target that can run here)",
        "data": "A labelled set: a zip or tar holding annotations.json (COCO keypoints) and its images "
                "(default: the recipe's evaluation set, fetched by sha256)",
        "limit": "Score only the first N labelled images (by id)",
        "predictions": "Also write each artifact's keypoints to this folder as COCO keypoint results (<target>.json)",
        "jobs": "Steps to run in parallel (default: number of cores)",
        "offline": "Use only the local store; never touch the network",
        "no_progress": "Plain log lines instead of a progress bar",
        "verbose": "Stream every step's output here (always kept in the step's log file)",
        "cache": CACHE,
    }
)
@command
def evaluate(c, recipe=None, target=None, data=None, limit=None, predictions=None, jobs=0, offline=False, no_progress=False,
             verbose=False, cache=None):
    """Score a recipe's targets on a labelled set beside the FP32 export (MMPose's own metrics); record it in their manifests."""
    request = building.BuildRequest(required(recipe, "--recipe"), jobs=jobs, offline=offline, progress=not no_progress,
                                    verbose=verbose, cache=cache)
    evaluating.evaluate(layout(), request, target or None, Path(data) if data else None, whole_number(limit, "--limit"),
                        Path(predictions) if predictions else None)


@task(
    help={
        "recipe": RECIPE + " (default: all recipes)",
        "calibration": "Also fetch the recipe's calibration archive",
        "evaluation": "Also fetch the recipe's labelled evaluation set",
        "locked": "Refuse inputs whose full sha256 is not in recipes/checkpoints.lock (CI)",
        "offline": "Use only the local store and name any missing blob",
        "verify": "Re-hash store hits fully instead of trusting the stat cache",
        "no_progress": "Plain log lines instead of a progress bar",
        "max_download": MAX_DOWNLOAD,
    }
)
@command
def fetch(c, recipe=None, calibration=False, evaluation=False, locked=False, offline=False, verify=False, no_progress=False,
          max_download=None):
    """Fetch checkpoints (and calibration and evaluation sets) by sha256 into the content-addressed store."""
    fetching.fetch_recipe_inputs(
        layout(), recipe, calibration=calibration, evaluation=evaluation, locked=locked, offline=offline, verify=verify,
        progress=not no_progress, max_download=max_download,
    )


@task(help={"bootstrap": "Make the base image afresh from the pinned Debian release even if it exists",
            "cache": CACHE, "cache_read_only": CACHE_READ_ONLY})
@command
def images(c, bootstrap=False, cache=None, cache_read_only=False):
    """Build the base (mmdebstrap + docker import, no root) and toolchain images; unchanged ones are never rebuilt."""
    imaging.images(layout(), bootstrap, cache, cache_read_only)


@task(help={"toolchain": "Toolchain folder under docker/ whose requirements.in to lock"})
@command
def lock(c, toolchain=None):
    """Resolve docker/<toolchain>/requirements.in into requirements.lock, every wheel pinned by sha256."""
    locking.lock(layout(), required(toolchain, "--toolchain"))


@task(
    help={
        "recipe": RECIPE,
        "target": TARGET + " that was built",
        "to": "Destination: a folder for the static layout (serve it over HTTP as is) or oci://HOST[:PORT]/NAMESPACE",
        "version": "Version to publish under (default: sha-<first 12 hex of the tarball's sha256>)",
        "key": "Ed25519 private key (PEM file) to sign with (default: POSEPIPE_SIGNING_KEY)",
        "allow_unverified": "Also publish targets labelled 'compiled' (really built, but no check of their output passed)",
    }
)
@command
def publish(c, recipe=None, to=None, target=None, version=None, key=None, allow_unverified=False):
    """Publish built artifacts: verify their manifests, sign, add them to the index and catalog page."""
    publishing.publish(layout(), required(recipe, "--recipe"), target, required(to, "--to"), version, key, allow_unverified)


@task(help={"out": "Folder for posepipe.key (private, mode 0600) and posepipe.pub", "name": "File name stem"})
@command
def keys(c, out=".", name="posepipe"):
    """Make an Ed25519 key pair for signing artifacts."""
    keying.keys(Path(out), name)


@task(
    help={
        "recipe": RECIPE,
        "target": "Target id to download",
        "version": "Artifact version (default: newest)",
        "from_": "Where artifacts were published: a folder, an http(s) URL of the layout, or oci://HOST[:PORT]/NAMESPACE",
        "to": "New folder to put the verified artifact in",
        "key": "Publisher's Ed25519 public key (PEM file; default: POSEPIPE_PUBLIC_KEY)",
        "allow_unsigned": "Accept an artifact published without a signature",
        "no_progress": "Plain log lines instead of a progress bar",
    }
)
@command
def download(c, recipe=None, target=None, from_=None, to=None, version=None, key=None, allow_unsigned=False, no_progress=False):
    """Download one artifact and verify its signature and every sha256 (no Docker needed)."""
    downloading.download(
        layout(), required(recipe, "--recipe"), required(target, "--target"), required(from_, "--from"),
        Path(required(to, "--to")), version, key, allow_unsigned, progress=not no_progress,
    )


@task(help={"changed_since": "Only cells whose recipe, toolchain or posepipe code changed since this git ref"})
@command
def matrix(c, changed_since=None):
    """Print the recipe x target build matrix as JSON for GitHub Actions (fromJSON)."""
    matrixing.matrix(layout(), changed_since)


@task(help={"recipe": "Only this recipe's outputs", "target": "Only this target's outputs (needs --recipe)"})
@command
def clean(c, recipe=None, target=None):
    """Remove build outputs under artifacts/ (the store is bounded by `invoke gc`)."""
    cleaning.clean(layout(), recipe, target)


@task(
    help={
        "max_size": "Keep the store under this size, e.g. 20G",
        "max_age": "Drop entries unused for this long, e.g. 30d",
        "images": "Also remove posepipe images that no toolchain under docker/ builds any more",
    }
)
@command
def gc(c, max_size=None, max_age=None, images=False):
    """Bound the store by size and age, least recently used first; entries in use are never deleted."""
    collecting.gc(layout(), max_size, max_age, images)


namespace = Collection.from_module(sys.modules[__name__])
