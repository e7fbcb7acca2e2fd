"""Every Dockerfile, parsed and held to YMIR's and Docker's conventions (no engine needed)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from _docker_helpers import (
    BASE_DOCKERFILE,
    CONSTRAINTS,
    INSTALL_SCRIPT,
    REPO,
    Dockerfile,
    Stage,
    all_dockerfiles,
    constraint_pins,
    env_of,
    exec_form,
    image_dockerfiles,
    labels_of,
    normalize,
    parse_dockerfile,
    parse_instructions,
)

OCI_LABELS = ("title", "description", "source", "version", "revision", "licenses", "created")
CUDA_IMAGE = re.compile(r"nvidia/cuda:12\.8\.1-cudnn-(devel|runtime)-ubuntu22\.04")
START = ["bash", "/usr/bin/start.sh"]
ALL = [pytest.param(path, id=str(path.relative_to(REPO))) for path in all_dockerfiles()]
IMAGES = [pytest.param(path, id=name) for name, path in image_dockerfiles().items()]


def parsed(path: Path) -> Dockerfile:
    return parse_dockerfile(path)


def stage_named(dockerfile: Dockerfile, alias: str) -> Stage:
    return next(stage for stage in dockerfile.stages if stage.alias == alias)


def stage_arg_default(stage: Stage, name: str) -> str:
    for instruction in stage.all("ARG"):
        key, _, default = instruction.args.partition("=")
        if key == name:
            return " ".join(shlex.split(default))
    raise AssertionError(f"ARG {name} not declared")


# ---- the parser itself ----------------------------------------------------------------------------


def test_parser_joins_continuations_and_drops_comments() -> None:
    text = "# syntax comment\nARG X=1\nFROM a:1 AS b\nRUN one \\\n  # inside\n  two \\\n  three\nCMD [\"x\"]\n"
    got = [(i.keyword, i.args, i.line) for i in parse_instructions(text)]
    assert got == [("ARG", "X=1", 2), ("FROM", "a:1 AS b", 3), ("RUN", "one two three", 4), ("CMD", '["x"]', 8)]


# ---- YMIR's conventions ---------------------------------------------------------------------------


def test_there_is_an_image_dockerfile() -> None:
    assert image_dockerfiles(), "no images/<name>/Dockerfile found"


@pytest.mark.parametrize("path", ALL)
def test_no_entrypoint_except_a_reset(path: Path) -> None:
    # An ENTRYPOINT breaks `docker run IMAGE cat /img-man/...` and the verifier's explicit command.
    for instruction in parsed(path).all("ENTRYPOINT"):
        assert exec_form(instruction.args) == [], f"line {instruction.line}: ENTRYPOINT {instruction.args}"


def test_base_resets_the_cuda_images_entrypoint() -> None:
    # nvidia/cuda images print a banner on stdout from their ENTRYPOINT: YAML read with cat breaks.
    dockerfile = parsed(BASE_DOCKERFILE)
    assert CUDA_IMAGE.fullmatch(dockerfile.default_image(dockerfile.final.image))
    assert [exec_form(i.args) for i in dockerfile.final.all("ENTRYPOINT")] == [[]]


@pytest.mark.parametrize("path", ALL)
def test_cmd_runs_start_sh(path: Path) -> None:
    cmds = parsed(path).final.all("CMD") or parsed(BASE_DOCKERFILE).final.all("CMD")
    assert cmds, "no CMD in the image nor in the base"
    assert exec_form(cmds[-1].args) == START


@pytest.mark.parametrize("path", IMAGES)
def test_image_writes_start_sh_and_its_entry(path: Path) -> None:
    runs = " ".join(i.args for i in parsed(path).final.all("RUN"))
    assert "/usr/bin/start.sh" in runs and "exec python3 /app/start.py" in runs
    assert "chmod 755 /usr/bin/start.sh" in runs
    copies = [shlex.split(i.args) for i in parsed(path).final.all("COPY")]
    assert [f"images/{path.parent.name}/start.py", "/app/start.py"] in copies
    assert [f"images/{path.parent.name}/img-man/", "/img-man/"] in copies


@pytest.mark.parametrize("path", IMAGES)
def test_image_is_built_from_the_base_image_arg(path: Path) -> None:
    dockerfile = parsed(path)
    assert "BASE_IMAGE" in dockerfile.global_args
    assert {stage.image for stage in dockerfile.stages} == {"${BASE_IMAGE}"}


@pytest.mark.parametrize("path", ALL)
def test_base_images_are_pinned_by_tag(path: Path) -> None:
    dockerfile = parsed(path)
    aliases = {stage.alias for stage in dockerfile.stages if stage.alias}
    references = [stage.image for stage in dockerfile.stages]
    for stage in dockerfile.stages:
        for copy in stage.all("COPY"):
            references += [w.split("=", 1)[1] for w in copy.args.split() if w.startswith("--from=")]
    for reference in references:
        if reference in aliases or reference == "${BASE_IMAGE}":
            continue
        reference = dockerfile.default_image(reference)  # build.py's defaults are these
        name, _, tag = reference.rpartition(":")
        assert name and "/" not in tag, f"{reference}: no tag"
        assert tag != "latest" and "$" not in reference, f"{reference}: not pinned"


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops the path or one of its folders: the last pattern that matches
    decides, a ``!pattern`` keeping what an earlier one dropped (Docker's rule)."""
    parts = relative.strip("/").split("/")
    dropped = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        if pattern.endswith("/**"):
            pattern = pattern[:-3]
        if pattern.startswith("**/"):
            match = any(fnmatch.fnmatch("/".join(parts[i:j]), pattern[3:])
                        for i in range(len(parts)) for j in range(i + 1, len(parts) + 1))
        else:
            match = any(fnmatch.fnmatch("/".join(parts[:j]), pattern) for j in range(1, len(parts) + 1))
        if match:
            dropped = not keep
    return dropped


@pytest.mark.parametrize("path", ALL)
def test_copy_sources_are_in_the_build_context(path: Path) -> None:
    patterns = dockerignore_patterns()
    for copy in parsed(path).all("COPY"):
        words = shlex.split(copy.args)
        if any(word.startswith("--from=") for word in words):
            continue
        for source in [w for w in words if not w.startswith("--")][:-1]:
            assert (REPO / source).exists(), f"line {copy.line}: {source} does not exist"
            assert not ignored(source, patterns), f"line {copy.line}: {source} is excluded by .dockerignore"


def test_dockerignore_matcher() -> None:
    patterns = ["tests", "**/*.pth", "**/__pycache__"]
    assert ignored("tests/docker/x.py", patterns) and ignored("images/mmdet/w.pth", patterns)
    assert ignored("base/ymir_base/__pycache__/a.pyc", patterns)
    assert not ignored("images/mmdet/weights.yaml", patterns)
    assert not ignored("build-inputs/weights/mmdet/w.pth", [*patterns, "!build-inputs/weights/**"])


def test_local_weights_reach_the_build_context() -> None:
    assert not ignored("build-inputs/weights/yolov5/yolov5n.pt", dockerignore_patterns())
    assert ignored("images/yolov5/yolov5n.pt", dockerignore_patterns())


def test_base_builds_on_the_cuda_12_8_images() -> None:
    dockerfile = parsed(BASE_DOCKERFILE)
    build = stage_named(dockerfile, "build")
    assert dockerfile.default_image(build.image) == "nvidia/cuda:12.8.1-cudnn-devel-ubuntu22.04"
    assert dockerfile.default_image(dockerfile.final.image) == "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04"
    assert dockerfile.default_image(stage_named(dockerfile, "uv").image) == "ghcr.io/astral-sh/uv:0.13.8"


@pytest.mark.parametrize("path", ALL)
def test_oci_labels_come_last_from_build_args(path: Path) -> None:
    final = parsed(path).final
    labels = labels_of(final)
    for key in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{key}"), f"label {key} missing"
    declared = {i.args.partition("=")[0] for i in final.all("ARG")}
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("created", "CREATED"), ("source", "SOURCE")):
        assert labels[f"org.opencontainers.image.{key}"] == f"${{{arg}}}"
        assert arg in declared
    # labels change every build: anything after them would never be cached
    first_label = min(i.line for i in final.all("LABEL"))
    assert all(i.line < first_label for i in final.instructions if i.keyword in ("RUN", "COPY", "ADD"))
    licenses = labels["org.opencontainers.image.licenses"]
    for licence in ("Apache-2.0", "GPL-3.0-only", "AGPL-3.0-only", "BSD-3-Clause"):
        assert licence in licenses.split(" AND ")


@pytest.mark.parametrize("path", ALL)
def test_title_names_the_image(path: Path) -> None:
    name = "base" if path == BASE_DOCKERFILE else path.parent.name
    assert labels_of(parsed(path).final)["org.opencontainers.image.title"] == f"ymir-executor {name}"


def test_the_images_of_the_seeds_have_dockerfiles() -> None:
    assert {"yolov5", "mmdet", "mmyolo", "mmrotate", "seg-in-one"} <= set(image_dockerfiles())


def test_base_environment() -> None:
    env = env_of(parsed(BASE_DOCKERFILE).final)
    expected = {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MKL_THREADING_LAYER": "GNU",
        "PIP_NO_CACHE_DIR": "1",
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "0",
        "HF_HUB_OFFLINE": "1",
        "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python",
        "HOME": "/tmp",
    }
    assert {key: env.get(key) for key in expected} == expected
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["YOLOV5_CONFIG_DIR"] and env["YOLO_CONFIG_DIR"]


def test_base_bakes_fonts_where_yolov5_and_ultralytics_look() -> None:
    # yolov5 looks in its config dir; ultralytics in matplotlib's font list (system fonts), and
    # keeps its settings in its own config dir, which must be writable by any --user: under /tmp
    final = parsed(BASE_DOCKERFILE).final
    env = env_of(final)
    runs = " ".join(i.args for i in final.all("RUN"))
    for folder in (env["YOLOV5_CONFIG_DIR"], "/usr/share/fonts/truetype/ymir"):
        assert folder in runs.split("for dir in ", 1)[1].split(";", 1)[0]
    assert '"$dir/Arial.ttf"' in runs and '"$dir/Arial.Unicode.ttf"' in runs
    assert env["YOLO_CONFIG_DIR"].startswith("/tmp/")
    # matplotlib's font cache is built once, in a config dir any user may write
    assert 'import matplotlib.font_manager' in runs and 'chmod 1777 "$MPLCONFIGDIR"' in runs
    assert env["NO_ALBUMENTATIONS_UPDATE"] == "1"
    assert [i.args for i in final.all("WORKDIR")] == ["/tmp/src", "/app"]


@pytest.mark.parametrize("path", ALL)
def test_only_classic_builder_syntax(path: Path) -> None:
    # build.py uses the Engine API through docker-py, which has no BuildKit
    for instruction in parse_instructions(path.read_text(encoding="utf-8")):
        for flag in ("--mount", "--chmod", "--link", "--parents", "--exclude", "--network", "--security"):
            assert flag not in instruction.args.split(), f"line {instruction.line}: {flag} needs BuildKit"
        assert "<<" not in instruction.args, f"line {instruction.line}: heredocs need BuildKit"


# ---- the install: the tested pins, through the tests' own script -----------------------------------


def test_base_installs_the_venv_with_the_tests_install_script() -> None:
    build = stage_named(parsed(BASE_DOCKERFILE), "build")
    installs = [i.args for i in build.all("RUN") if "scripts/install-stack.sh" in i.args]
    assert len(installs) == 1
    words = shlex.split(installs[0])
    assert words[words.index("scripts/install-stack.sh") + 1] == "/opt/venv"
    for setting in ("EDITABLE=0", "PROJECT=0", "FORCE_CUDA=$FORCE_CUDA"):
        assert setting in words
    assert stage_arg_default(build, "FORCE_CUDA") == "1"  # CUDA ops unless build.py --cuda cpu
    arches = stage_arg_default(build, "TORCH_CUDA_ARCH_LIST").split()
    assert arches[0] == "7.0" and arches[-1] == "9.0+PTX"
    copied = [shlex.split(i.args) for i in parsed(BASE_DOCKERFILE).final.all("COPY")]
    assert ["--from=build", "/opt/venv", "/opt/venv"] in copied
    assert ["--from=build", "/opt/python", "/opt/python"] in copied


def test_the_tests_venv_is_built_by_the_same_script() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "scripts/install-stack.sh .venv" in makefile


def test_install_script_is_editable_by_default_and_regular_with_editable_0() -> None:
    script = INSTALL_SCRIPT.read_text(encoding="utf-8")
    assert '"${EDITABLE:-1}" = 0' in script
    assert "--no-deps -e ." in script and "--no-deps .\n" in script


def copied_sources(stage: Stage) -> set[str]:
    sources = set()
    for copy in stage.all("COPY"):
        words = shlex.split(copy.args)
        if not any(word.startswith("--from=") for word in words):
            sources.update(w.rstrip("/") for w in words[:-1])
    return sources


def covered(path: str, sources: set[str]) -> bool:
    return any(path == source or path.startswith(source + "/") for source in sources)


def test_base_copies_every_package_the_project_installs() -> None:
    dockerfile = parsed(BASE_DOCKERFILE)
    stack = copied_sources(stage_named(dockerfile, "build"))
    assert {"requirements", "scripts/install-stack.sh"} <= stack
    project = copied_sources(dockerfile.final)
    packages = {str(p.relative_to(REPO)) for p in project_package_dirs()}
    assert packages, "pyproject.toml finds no package"
    needed = {"pyproject.toml", "README.md", "requirements/constraints.txt", *packages}
    missing = sorted(p for p in needed if not covered(p, project))
    assert not missing, f"not copied into the runtime stage that installs the project: {missing}"


def test_the_stack_layer_does_not_depend_on_the_project_sources() -> None:
    # a source change must not reinstall the stack: the build stage copies no package of ours
    stack = copied_sources(stage_named(parsed(BASE_DOCKERFILE), "build"))
    packages = {str(p.relative_to(REPO)) for p in project_package_dirs()}
    assert not [p for p in packages if covered(p, stack)]
    assert not stack & {"pyproject.toml", "base", "images"}


def project_package_dirs() -> list[Path]:
    find = pyproject()["tool"]["setuptools"]["packages"]["find"]
    dirs = []
    for where in find["where"]:
        for candidate in sorted((REPO / where).iterdir()):
            if (candidate / "__init__.py").is_file() and any(
                fnmatch.fnmatch(candidate.name, pattern) for pattern in find["include"]
            ):
                dirs.append(candidate)
    return dirs


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_package_data_reaches_the_non_editable_install() -> None:
    # The image installs the package as a wheel: a data file not named in package-data is lost.
    package_data = pyproject()["tool"]["setuptools"].get("package-data", {})
    missing = []
    for top in project_package_dirs():
        for file in top.rglob("*"):
            if not file.is_file() or file.suffix in (".py", ".pyc") or "__pycache__" in file.parts:
                continue
            if not _declared(file, top, package_data):
                missing.append(str(file.relative_to(REPO)))
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def _declared(file: Path, top: Path, package_data: dict[str, list[str]]) -> bool:
    folder = file.parent
    while True:
        package = ".".join(folder.relative_to(top.parent).parts)
        relative = file.relative_to(folder).as_posix()
        patterns = package_data.get(package, []) + package_data.get("*", [])
        if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
            return True
        if folder == top:
            return False
        folder = folder.parent


def pip_installs(text: str, variables: dict[str, str]) -> list[list[str]]:
    """The argument lists of every ``pip install`` in shell text (``$VAR`` resolved)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="&|;\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    words = [re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), w) for w in lexer]
    commands: list[list[str]] = [[]]
    for word in words:
        if set(word) <= set("&|;\n"):
            commands.append([])
        else:
            commands[-1].append(word)
    found = []
    for command in commands:
        for index, word in enumerate(command[1:], 1):
            if word == "install" and re.search(r"(^|/|\$)pip3?$", command[index - 1]):
                found.append(command[index + 1 :])
    return found


def requirements_of(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(requirements, constraint files, requirement files) of one ``pip install``."""
    requirements, constraints, files = [], [], []
    words = iter(args)
    for word in words:
        if word in ("-c", "--constraint"):
            constraints.append(next(words))
        elif word in ("-r", "--requirement"):
            files.append(next(words))
        elif not word.startswith("-"):
            requirements.append(word)
    return requirements, constraints, files


def script_variables(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=([^\s$]+)$", text, flags=re.MULTILINE))


def install_texts() -> list[tuple[str, str, dict[str, str]]]:
    """(where, shell text, variables) for every Dockerfile RUN and the install script it runs."""
    texts = []
    for path in all_dockerfiles():
        for instruction in parsed(path).all("RUN"):
            texts.append((f"{path.relative_to(REPO)}:{instruction.line}", instruction.args, {}))
    script = INSTALL_SCRIPT.read_text(encoding="utf-8")
    texts.append((str(INSTALL_SCRIPT.relative_to(REPO)), script.replace("\\\n", " "), script_variables(script)))
    return texts


def test_constraints_pin_every_package_exactly() -> None:
    pins = constraint_pins()
    assert {"torch", "torchvision", "onedl-mmcv", "yolov5", "ultralytics"} <= set(pins)


def test_every_pip_install_is_constrained_to_the_tested_pins() -> None:
    pins = constraint_pins()
    constraints = str(CONSTRAINTS.relative_to(REPO))
    seen = 0
    for where, text, variables in install_texts():
        for args in pip_installs(text, variables):
            seen += 1
            requirements, constraint_files, files = requirements_of(args)
            assert constraint_files == [constraints], f"{where}: pip install {' '.join(args)}: not -c {constraints}"
            for requirement in requirements:
                if requirement == ".":
                    assert "--no-deps" in args, f"{where}: our package must be installed with --no-deps"
                    continue
                name = re.split(r"[\[<>=!~;@ ]", requirement, maxsplit=1)[0]
                assert normalize(name) in pins, f"{where}: {requirement} is not pinned by {constraints}"
            for file in files:
                for raw in (REPO / file).read_text(encoding="utf-8").splitlines():
                    line = raw.split("#", 1)[0].strip()
                    if line:
                        name = re.split(r"[\[<>=!~;@ ]", line, maxsplit=1)[0]
                        assert normalize(name) in pins, f"{file}: {line} is not pinned by {constraints}"
    assert seen >= 5, "expected the install script's pip installs"


@pytest.mark.parametrize("path", ALL)
def test_nothing_is_installed_around_the_constraints(path: Path) -> None:
    for instruction in parsed(path).all("RUN"):
        for tool in ("conda ", "mim install", "easy_install", "pipx "):
            assert tool not in instruction.args, f"line {instruction.line}: {tool.strip()}"
        assert not re.search(r"apt-get install[^&;]*\bpython3-", instruction.args), (
            f"line {instruction.line}: Python packages from apt bypass the pins"
        )
