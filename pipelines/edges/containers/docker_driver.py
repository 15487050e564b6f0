"""The only module that talks to Docker (through the docker SDK).

Containers are created, attached to, then started (reading logs after an
auto-remove races the removal), always removed on the way out unless the
caller keeps a failed one, and labelled with the owning process so that a
run killed with SIGKILL has its containers reaped by the next run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from pipelines.core.errors import EngineUnavailable, StepFailed

OWNER_LABEL = "posepipe.owner"  # "<hostname>:<pid>:<process start ticks>"
STEP_LABEL = "posepipe.step"


@dataclass(frozen=True)
class Mount:
    host: Path
    container: str
    read_only: bool = True


def _bind_mounts(mounts: Iterable[Mount]) -> list[docker.types.Mount]:
    """Bind mounts as the engine's API takes them (one host file may appear at several container paths)."""
    return [docker.types.Mount(m.container, str(m.host), type="bind", read_only=m.read_only) for m in mounts]


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    timed_out: bool
    kept_container: str | None  # id of a failed container left for inspection


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def owner_gone(token: str) -> bool:
    """True when the process named by an owner token (on this host) has ended or the pid was reused."""
    owner_host, pid, ticks = (token.split(":") + ["", "", ""])[:3]
    return owner_host == socket.gethostname() and pid.isdigit() and _start_ticks(int(pid)) != ticks


class DockerDriver:
    def __init__(self, client: docker.DockerClient):
        self.client = client
        self.api = client.api
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> DockerDriver:
        try:
            client = docker.from_env(timeout=120)
            client.ping()
        except (DockerException, requests.RequestException) as e:
            raise EngineUnavailable(f"cannot reach the Docker engine: {e}") from None
        return cls(client)

    # ---------------------------------------------------------------- images

    def image_id(self, ref: str) -> str | None:
        try:
            return self.api.inspect_image(ref)["Id"]
        except ImageNotFound:
            return None

    def image_label(self, ref: str, key: str) -> str | None:
        try:
            return (self.api.inspect_image(ref)["Config"].get("Labels") or {}).get(key)
        except ImageNotFound:
            return None

    def pull(self, ref: str) -> str:
        if "@sha256:" not in ref:
            raise StepFailed(f"base image {ref!r} must be pinned by digest (name@sha256:...)")
        try:
            return self.client.images.pull(ref).id
        except APIError as e:
            raise StepFailed(f"cannot pull base image {ref}: {e.explanation}") from None

    def push(self, image: str, repository: str, tag: str) -> None:
        """Push ``image`` as ``repository:tag`` (the extra local name is dropped afterwards)."""
        self.api.tag(image, repository, tag)
        try:
            _transfer(self.api.push(repository, tag=tag, stream=True, decode=True))
        finally:
            self.remove_image(f"{repository}:{tag}")

    def pull_as(self, repository: str, tag: str, local: str) -> str:
        """Pull ``repository:tag`` and name it ``local``; the image ID. Raises APIError (missing, refused)."""
        _transfer(self.api.pull(repository, tag=tag, stream=True, decode=True))
        name, _, local_tag = local.rpartition(":")
        self.api.tag(f"{repository}:{tag}", name, local_tag)
        self.remove_image(f"{repository}:{tag}")
        return self.api.inspect_image(local)["Id"]

    def tags(self, repository_prefix: str) -> list[str]:
        """Every local image tag under ``repository_prefix`` (e.g. "posepipe/")."""
        return sorted(t for img in self.api.images() for t in img.get("RepoTags") or [] if t.startswith(repository_prefix))

    def remove_image(self, ref: str) -> bool:
        """Untag/remove ``ref``; False when a container still uses it."""
        try:
            self.api.remove_image(ref)
            return True
        except APIError:
            return False

    def load_tar(self, tar: Path) -> str | None:
        """`docker load` a `docker save` file (streamed); the ID of the image it holds."""
        with open(tar, "rb") as f:
            images = self.client.images.load(f)
        return images[0].id if images else None

    def import_tar(self, tar: Path, repository: str, tag: str, changes: list[str]) -> None:
        self.api.import_image(src=str(tar), repository=repository, tag=tag, changes=changes)

    def build(self, context: Path, tag: str, buildargs: dict[str, str], on_line: Callable[[str], None],
              host_network: bool = False) -> str:
        """Build ``context`` (never pulls); on error name the failing Dockerfile step. ``host_network``: the
        build's steps share the host's network, to reach a server the caller runs on 127.0.0.1."""
        step = ""
        tail: list[str] = []
        for chunk in self.api.build(
            path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False, decode=True,
            network_mode="host" if host_network else None,
        ):
            if "stream" in chunk:
                for line in filter(str.strip, chunk["stream"].splitlines()):
                    if line.startswith("Step "):
                        step = line
                    tail = (tail + [line])[-30:]
                    on_line(line)
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message", chunk["error"])
                raise StepFailed(
                    f"building image {tag} failed at {step or 'the first step'}:\n  {detail}\n  last lines:\n    "
                    + "\n    ".join(tail)
                )
        image_id = self.image_id(tag)
        if image_id is None:
            raise StepFailed(f"docker build finished but {tag} does not exist")
        return image_id

    # ---------------------------------------------------------------- containers

    def run(
        self,
        *,
        image: str,
        command: list[str],
        mounts: Iterable[Mount],
        env: dict[str, str],
        label: str,
        log_path: Path,
        on_line: Callable[[str], None],
        timeout: float,
        mem_limit: str | None = None,
        cpus: float | None = None,
        keep_failed: bool = False,
    ) -> RunResult:
        """Run one hermetic container to its end; the full log goes to ``log_path``."""
        host_config = self.api.create_host_config(
            mounts=_bind_mounts(mounts),
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": "rw,exec,size=2g"},
            mem_limit=mem_limit,
            nano_cpus=int(cpus * 1e9) if cpus else None,
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
        )
        user = "1000:1000" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
        container = self.api.create_container(
            image,
            command,
            user=user,
            environment=env,
            working_dir="/tmp",
            network_disabled=True,
            labels={OWNER_LABEL: owner_token(), STEP_LABEL: label},
            host_config=host_config,
        )["Id"]
        with self._lock:
            self._running.add(container)
        failed = True
        try:
            stream = self.api.attach(container, stream=True, logs=True, stdout=True, stderr=True)
            reader = threading.Thread(target=_pump, args=(stream, log_path, on_line), daemon=True)
            reader.start()
            self.api.start(container)
            timed_out = False
            try:
                code = self.api.wait(container, timeout=timeout)["StatusCode"]
            except (requests.ReadTimeout, requests.ConnectionError):
                timed_out = True
                with contextlib.suppress(APIError):
                    self.api.kill(container)
                code = self.api.wait(container, timeout=60)["StatusCode"]
            reader.join(timeout=60)
            failed = timed_out or code != 0
            return RunResult(code, timed_out, container if failed and keep_failed else None)
        finally:
            with self._lock:
                self._running.discard(container)
            if not (failed and keep_failed):
                self._remove(container)

    def debug_shell(self, failed: str, mounts: Iterable[Mount], label: str) -> str:
        """Replace a failed, exited container by a live copy of it to `docker exec` into.

        The copy is committed from the failed container (same files), runs `sleep
        infinity` with the same mounts and no network, and is not reaped as an orphan.
        """
        image = self.api.commit(failed, repository="posepipe-failed", tag=failed[:12])["Id"]
        self._remove(failed)
        name = f"posepipe-failed-{failed[:12]}"
        host_config = self.api.create_host_config(
            mounts=_bind_mounts(mounts),
            network_mode="none",
            tmpfs={"/tmp": "rw,exec,size=2g"},
        )
        self.api.create_container(
            image, ["sleep", "infinity"], name=name, network_disabled=True, working_dir="/tmp",
            labels={"posepipe.kept": label}, host_config=host_config,
        )
        self.api.start(name)
        return name

    def _remove(self, container: str) -> None:
        try:
            self.api.remove_container(container, force=True, v=True)
        except NotFound:
            pass
        except APIError as e:
            if e.status_code != 409:  # 409: a removal is already in progress
                raise

    def kill_running(self) -> None:
        """Stop and remove every container this process started (Ctrl-C)."""
        with self._lock:
            running = list(self._running)
        for c in running:
            self._remove(c)

    def orphans(self) -> list[str]:
        """Containers of posepipe processes on this host that no longer exist."""
        return [c["Id"] for c in self.api.containers(all=True, filters={"label": OWNER_LABEL})
                if owner_gone(c["Labels"][OWNER_LABEL])]

    def reap_orphans(self) -> int:
        """Remove containers left by posepipe processes that died (kill -9) on this host."""
        found = self.orphans()
        for c in found:
            self._remove(c)
        return len(found)


def _transfer(chunks) -> None:
    """Drain a push or pull progress stream; the engine reports failures inside it, not as exceptions."""
    for chunk in chunks:
        if "error" in chunk:
            raise APIError(chunk.get("errorDetail", {}).get("message", chunk["error"]))


def _pump(stream, log_path: Path, on_line: Callable[[str], None]) -> None:
    """Copy a container's output to its log file, unclipped, and feed whole lines to the console."""
    pending = b""
    with open(log_path, "ab", buffering=0) as log:
        for chunk in stream:
            log.write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_line(line.decode("utf-8", "replace"))
        if pending:
            on_line(pending.decode("utf-8", "replace"))
