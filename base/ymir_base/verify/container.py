"""Run a task in a built image the way YMIR does (protocol §1.2), for ``verify --docker``.

``docker run -v IN:/in:ro -v OUT:/out --user UID:GID --shm-size … --network none IMAGE``, with no
command, as a uid that has no passwd entry in the image. Besides the exit code, each run is held
to two checks: ``/in`` is unchanged (every file's bytes and mode), and the container wrote nothing
outside ``/out`` but its scratch folder ``/tmp`` (``HOME``, caches), per ``docker diff``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ymir_base.verify.pipeline import Outcome

IN_UNCHANGED = "/in unchanged"
NOTHING_OUTSIDE_OUT = "nothing written outside /out and /tmp"
DOCKER_TIMEOUT_S = 60


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 and mode of every file and folder under ``root``, by relative path."""
    digests = {}
    for path in sorted(Path(root).rglob("*")):
        relative = str(path.relative_to(root))
        mode = oct(path.lstat().st_mode)
        if path.is_file() and not path.is_symlink():
            digests[relative] = f"{mode} {hashlib.sha256(path.read_bytes()).hexdigest()}"
        else:
            digests[relative] = mode
    return digests


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


MOUNTS = ("/in", "/out")  # docker creates their mount points in the container's own layer


def written_outside(diff: str, scratch: tuple[str, ...]) -> list[str]:
    """The lines of ``docker diff`` output for paths outside the scratch folders (their parents
    and the mount points themselves excepted)."""
    outside = []
    for line in diff.splitlines():
        _, _, path = line.partition(" ")
        if not path or path in MOUNTS:
            continue
        if any(path == s or path.startswith(s + "/") or s.startswith(path + "/") for s in scratch):
            continue
        outside.append(line)
    return outside


@dataclass
class ContainerRunner:
    """Runs ``tag`` as a YMIR task: call it with (image, in_dir, out_dir); ``image`` is the
    executor's name, unused here since the tag decides."""

    tag: str
    user: str = "4242:4242"
    shm_size: str = "1g"
    scratch: tuple[str, ...] = ("/tmp",)
    docker: str = "docker"
    env: dict[str, str] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def __call__(self, image: str, in_dir: Path, out_dir: Path) -> Outcome:
        before = tree_digest(in_dir)
        name = self.start(in_dir, out_dir)
        code = self.wait(name)
        diff = self._docker("diff", name).stdout
        self.save_log(name, out_dir)
        self.remove(name)
        outside = written_outside(diff, self.scratch)
        return Outcome(code, {
            IN_UNCHANGED: [f"changed: {path}" for path in changed_paths(before, tree_digest(in_dir))],
            NOTHING_OUTSIDE_OUT: [f"docker diff: {line}" for line in outside],
        })

    def start(self, in_dir: Path, out_dir: Path) -> str:
        """Start the task detached; return the container's name."""
        self._give_out_dir(Path(out_dir))
        name = f"ymir-verify-{uuid.uuid4().hex[:12]}"
        command = [self.docker, "run", "--detach", "--name", name,
                   "-v", f"{Path(in_dir).resolve()}:/in:ro", "-v", f"{Path(out_dir).resolve()}:/out",
                   "--user", self.user, "--shm-size", self.shm_size, "--network", "none"]
        for key, value in self.env.items():
            command += ["--env", f"{key}={value}"]
        subprocess.run([*command, self.tag], check=True, capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S)
        return name

    def wait(self, name: str) -> int:
        done = subprocess.run([self.docker, "wait", name], check=True, capture_output=True, text=True)
        return int(done.stdout.strip())

    def kill(self, name: str) -> None:
        self._docker("kill", name)

    def remove(self, name: str) -> None:
        self._docker("rm", "--force", name)

    def save_log(self, name: str, out_dir: Path) -> Path:
        """The container's stdout and stderr, beside ``out_dir`` (never inside it)."""
        logs = self._docker("logs", name)
        path = Path(out_dir).parent / f"container-{int(time.time() * 1000)}.log"
        path.write_text(logs.stdout + logs.stderr, encoding="utf-8")
        self.logs.append(path)
        return path

    def _give_out_dir(self, out_dir: Path) -> None:
        """YMIR hands the task an /out that its uid owns."""
        uid, gid = (int(part) for part in self.user.split(":"))
        out_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(out_dir, uid, gid)
        else:
            out_dir.chmod(0o777)

    def _docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.docker, *args], check=False, capture_output=True, text=True,
                              timeout=DOCKER_TIMEOUT_S)
