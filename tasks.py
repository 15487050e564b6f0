"""`invoke ...` in a checkout: the same tasks as the installed `posepipe` command."""

from pipelines.entry.tasks import namespace  # noqa: F401  (Invoke loads the collection named `namespace`)
