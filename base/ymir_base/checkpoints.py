"""Model files from ``/in`` are untrusted: check them before anything unpickles them.

A PyTorch checkpoint is a zip whose ``data.pkl`` is a pickle, and unpickling runs whatever
callables the pickle names. :func:`load_weights_only` loads with torch's restricted unpickler
(``weights_only=True``), for formats that hold only tensors and plain containers.
:func:`check_pickle_globals` is for formats that pickle whole objects (YOLOv5's ``.pt``): it reads
the pickle's opcodes without executing any, follows the stack symbolically, and refuses a file
that names a global outside the caller's allow-lists, calls a class meant only to be instantiated
(or instantiates a function), or builds state into anything but an object made from an allowed
class. Extension-registry and protocol-0/1 instantiation opcodes are refused outright.
"""

from __future__ import annotations

import pickletools
import zipfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ymir_base.errors import ModelError

_MARK = object()
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
                         "BINSTRING", "STRING"})
_REFUSED_OPS = frozenset({"INST", "OBJ", "EXT1", "EXT2", "EXT4"})
_CONTAINER_OPS = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"})
_TUPLE_SIZES: dict[str, int | None] = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "TUPLE": None}


@dataclass(frozen=True)
class _Global:
    name: str  # "module.qualname"


@dataclass(frozen=True)
class _Str:
    value: str


@dataclass(frozen=True)
class _Tuple:
    items: tuple[Any, ...]


_GETATTR = frozenset({"__builtin__.getattr", "builtins.getattr"})


@dataclass(frozen=True)
class _Made:
    """An object the pickle made: by instantiating ``cls`` (NEWOBJ) or calling a function."""

    cls: str | None


@dataclass(frozen=True)
class AllowList:
    """What a format may name, as ``module.name``. ``classes``: instantiated without arguments
    (NEWOBJ; BUILD then sets their state); ``callables``: called with arguments (REDUCE);
    ``references``: only referred to (storage types in persistent ids). An entry ending in ``.`` is
    a module prefix: any top-level name of that module or of the modules below it (never a dotted
    name, which would reach into what the module imported)."""

    classes: Collection[str] = ()
    callables: Collection[str] = ()
    references: Collection[str] = ()
    # ``module.Class.attribute`` the pickle may fetch with getattr (a method a model keeps as an
    # attribute, e.g. YOLOv5's Segment head keeps Detect.forward)
    attributes: Collection[str] = ()

    @staticmethod
    def _match(module: str, name: str, allowed: Iterable[str]) -> bool:
        if "." in name:
            return False
        full = f"{module}.{name}"
        return any(full == a or (a.endswith(".") and f"{module}.".startswith(a)) for a in allowed)

    def is_class(self, full: str) -> bool:
        return self._match(*full.rsplit(".", 1), self.classes) if "." in full else False

    def is_callable(self, full: str) -> bool:
        return self._match(*full.rsplit(".", 1), self.callables) if "." in full else False

    def known(self, module: str, name: str) -> bool:
        if self.attributes and f"{module}.{name}" in _GETATTR:
            return True
        return any(self._match(module, name, group) for group in (self.classes, self.callables, self.references))


def pickle_of(path: Path) -> bytes:
    """The ``data.pkl`` of a zip-format torch file; ModelError for anything else (the legacy
    non-zip format, a truncated zip, a foreign archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(names) != 1:
                raise ModelError(f"{path} is not a PyTorch checkpoint: no single <name>/data.pkl in the archive")
            return archive.read(names[0])
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:  # RuntimeError: encrypted member
        raise ModelError(f"{path} is not a complete zip-format PyTorch checkpoint (truncated or another kind of "
                         f"file): {exc}") from exc


def check_pickle_globals(path: Path, allowed: AllowList, what: str) -> list[str]:
    """Check the checkpoint at ``path`` without executing it; returns the globals it names.
    ``what`` (e.g. "a YOLOv5 model") goes into the message of the ModelError."""
    data = pickle_of(path)
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    seen: dict[str, None] = {}

    def refuse(reason: str) -> ModelError:
        return ModelError(f"{path} is not {what}: {reason}; refusing to unpickle it")

    def pop() -> Any:
        if not stack:
            raise refuse("its pickle pops from an empty stack")
        return stack.pop()

    def pop_to_mark() -> None:
        while stack:
            if stack.pop() is _MARK:
                return
        raise refuse("its pickle has no mark where one is needed")

    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in _REFUSED_OPS:
                raise refuse(f"it uses the pickle opcode {name}")
            if name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, qualname = str(arg).partition(" ")
                else:
                    qual, mod = pop(), pop()
                    if not (isinstance(qual, _Str) and isinstance(mod, _Str)):
                        raise refuse("it computes the name of a global")
                    module, qualname = mod.value, qual.value
                full = f"{module}.{qualname}"
                if not allowed.known(module, qualname):
                    raise refuse(f"it names the global {full}, which {what} never needs")
                seen[full] = None
                stack.append(_Global(full))
            elif name in _STRING_OPS:
                stack.append(_Str(arg if isinstance(arg, str) else str(arg)))
            elif name == "MARK":
                stack.append(_MARK)
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1] if stack else None
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(arg)))
            elif name == "DUP":
                stack.append(stack[-1] if stack else None)
            elif name == "REDUCE":
                args = pop()
                fn = pop()
                if isinstance(fn, _Global) and fn.name in _GETATTR:
                    fetched = _attribute(args)
                    if fetched not in allowed.attributes:
                        raise refuse(f"it fetches the attribute {fetched or 'of a computed object'}")
                elif not (isinstance(fn, _Global) and allowed.is_callable(fn.name)):
                    raise refuse(f"it calls {_describe(fn)}")
                stack.append(_Made(None))
            elif name in _TUPLE_SIZES:
                size = _TUPLE_SIZES[name]
                if size is None:
                    items = []
                    while stack and stack[-1] is not _MARK:
                        items.insert(0, stack.pop())
                    pop_to_mark()
                else:
                    items = [pop() for _ in range(size)][::-1]
                stack.append(_Tuple(tuple(items)))
            elif name in ("NEWOBJ", "NEWOBJ_EX"):
                pop()
                if name == "NEWOBJ_EX":
                    pop()
                cls = pop()
                if not (isinstance(cls, _Global) and allowed.is_class(cls.name)):
                    raise refuse(f"it instantiates {_describe(cls)}")
                stack.append(_Made(cls.name))
            elif name == "BUILD":
                pop()
                target = stack[-1] if stack else None
                if not isinstance(target, _Made):
                    raise refuse(f"it sets the state of {_describe(target)}")
            else:
                _generic(op, stack, pop, pop_to_mark)
    except ModelError:
        raise
    except Exception as exc:  # a malformed or truncated pickle
        raise ModelError(f"{path} is not {what}: its pickle is malformed ({type(exc).__name__}: {exc})") from exc
    return list(seen)


def _generic(op: pickletools.OpcodeInfo, stack: list[Any], pop: Any, pop_to_mark: Any) -> None:
    """Any other opcode by its declared stack effect; what it pushes is plain data. The container
    opcodes (APPENDS, SETITEMS, ...) leave their list, dict or set where it was."""
    before = op.stack_before
    if pickletools.markobject in before:
        pop_to_mark()
        below = before.index(pickletools.markobject)
    else:
        below = len(before)
    if op.name in _CONTAINER_OPS:
        below -= 1  # the container itself stays
    for _ in range(below):
        pop()
    if op.name not in _CONTAINER_OPS:
        stack.extend(_Made(None) for _ in op.stack_after)


def _attribute(args: Any) -> str | None:
    """``module.Class.attribute`` for the arguments of a getattr call on a global, else None."""
    if isinstance(args, _Tuple) and len(args.items) == 2:
        target, attribute = args.items
        if isinstance(target, _Global) and isinstance(attribute, _Str):
            return f"{target.name}.{attribute.value}"
    return None


def _describe(item: Any) -> str:
    if isinstance(item, _Global):
        return item.name
    if isinstance(item, _Made):
        return f"an object made from {item.cls}" if item.cls else "a computed object"
    return "a computed object"


def load_weights_only(path: Path, *, safe_globals: Iterable[Any] = (), what: str = "a weights file") -> Any:
    """``torch.load(..., weights_only=True)`` (with the given classes allowed), its refusals and
    read errors as ModelError naming the file."""
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        refused = isinstance(exc, pickle.UnpicklingError)
        reason = _refusal(str(exc)) if refused else f"{type(exc).__name__}: {exc}"
        if not _zip_magic(path):  # torch then read it as the legacy format, whatever the bytes
            raise ModelError(f"{path} is not {what}: not a zip-format PyTorch file, and not a legacy one that loads "
                             f"(truncated, or another kind of file): {reason}") from exc
        if refused:
            raise ModelError(f"{path} is not {what} that can be loaded safely (weights_only): {reason}") from exc
        raise ModelError(f"cannot read {path} as {what}: {reason}") from exc


def _zip_magic(path: Path) -> bool:
    """Whether the file starts as a zip archive: what makes torch.load read it as its zip format
    (a truncated zip checkpoint still does; random bytes or a legacy pickle do not)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _refusal(text: str) -> str:
    """The reason in torch's weights_only refusal, without its advice to load the file in full."""
    boilerplate = ("Weights only load failed", "(1)", "(2)", "Check the documentation")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(boilerplate):
            return line.removeprefix("WeightsUnpickler error:").split(". Please use", 1)[0].strip()
    return "refused by torch's restricted unpickler"
