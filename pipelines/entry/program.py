"""The installed `posepipe` command: an Invoke Program over the same tasks, from any folder."""

from __future__ import annotations

from invoke import Program

from pipelines import __version__
from pipelines.entry.tasks import namespace

program = Program(namespace=namespace, version=__version__, name="posepipe", binary="posepipe")
