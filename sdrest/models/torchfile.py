"""Tensor names and shapes from PyTorch files (``.ckpt``/``.pt``/``.pth``) WITHOUT unpickling.

Why: a pickle is a program. ``pickle.load`` on a downloaded checkpoint can run any
code (``os.system`` via ``__reduce__``), so the library never calls it. Instead the
pickle's opcodes (from :func:`pickletools.genops`, which only decodes them) drive a
tiny *symbolic* stack machine: globals become inert ``(module, name)`` records, calls
become records of "this would have been called with these arguments", and only the
calls that torch itself uses to rebuild tensors are interpreted (to read the shape).
Nothing is imported and nothing is called. If the program uses an opcode the machine
does not model, it falls back to collecting the string constants that look like tensor
names, which is enough to classify most files.

Formats: the zip format (torch >= 1.6: ``<dir>/data.pkl`` plus ``<dir>/data/<n>``
storages) and the legacy format (consecutive pickles: magic number, protocol version,
system info, the object, then raw storages).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from sdrest.errors import SdrestError
from sdrest.models.headers import Header, HeaderError, TensorInfo

__all__ = ["PickleScan", "read_torch_legacy", "read_torch_zip", "scan_pickle"]

#: Largest pickle (object structure, not tensor data) we are willing to interpret.
MAX_PICKLE_BYTES = 64 << 20
#: torch's magic number, the first pickle of the legacy format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "DoubleStorage": "F64",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}

#: Globals a normal checkpoint references. Anything else is reported in
#: ``details["unsafe_globals"]``: harmless here (nothing is executed) but a sign the file
#: would run foreign code in any tool that does ``torch.load(weights_only=False)``.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("_codecs", "encode"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "slice"),
    ("__builtin__", "set"),
    ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
}


class _Global(NamedTuple):
    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


def _is_safe(g: _Global) -> bool:
    if g in _SAFE_GLOBALS:
        return True
    if g.module == "torch._utils" and g.name.startswith("_rebuild_"):
        return True
    return g.module == "torch" and (
        g.name.endswith("Storage")
        or g.name in {"float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool"}
    )


@dataclass
class _Call:
    """A call the pickle asks for; recorded, never performed."""

    func: Any
    args: Any


@dataclass
class _Storage:
    dtype: str | None


@dataclass
class _Tensor:
    shape: tuple[int, ...] | None
    dtype: str | None


class _Mark:
    pass


_MARK = _Mark()


class _Unsupported(SdrestError):
    pass


@dataclass
class PickleScan:
    """Result of :func:`scan_pickle`: the (nested) object as far as it could be modelled."""

    root: Any
    globals: set[str]
    unsafe_globals: set[str]
    fallback: bool = False
    strings: list[str] | None = None


def _hashable(key: Any) -> Any:
    try:
        hash(key)
        return key
    except TypeError:
        return f"<{type(key).__name__}>"


def _storage_from_pid(pid: Any) -> _Storage:
    # ('storage', <storage class global>, key, location, numel[, view metadata])
    if isinstance(pid, tuple) and len(pid) >= 2 and isinstance(pid[1], _Global):
        return _Storage(_STORAGE_DTYPES.get(pid[1].name))
    return _Storage(None)


def _reduce(func: Any, args: Any) -> Any:
    """Model the effect of ``func(*args)`` for the few callables torch uses."""
    if not isinstance(args, tuple):
        args = ()
    if isinstance(func, _Global):
        if func.module == "torch._utils" and func.name in (
            "_rebuild_tensor_v2",
            "_rebuild_tensor",
            "_rebuild_tensor_v3",
        ):
            storage = args[0] if args else None
            shape = args[2] if len(args) > 2 else None
            shape = (
                tuple(int(d) for d in shape)
                if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape)
                else None
            )
            return _Tensor(shape, storage.dtype if isinstance(storage, _Storage) else None)
        if func.module == "torch._utils" and func.name.startswith("_rebuild_parameter"):
            return args[0] if args else None
        if (func.module, func.name) == ("torch._tensor", "_rebuild_from_type_v2") and len(args) >= 3:
            return _reduce(args[0], args[2])
        if (func.module, func.name) in {("collections", "OrderedDict"), ("builtins", "dict"), ("__builtin__", "dict")}:
            return {}
    return _Call(func, args)


def _pop_mark(stack: list[Any]) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise _Unsupported("MARK missing")


def _evaluate(ops: Any, stack: list[Any], memo: dict[Any, Any], globals_seen: set[_Global]) -> Any:
    """Run the symbolic machine over ``ops`` until STOP; returns the pickled object."""
    for opcode, arg, _pos in ops:
        name = opcode.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            return stack.pop()
        if name == "MARK":
            stack.append(_MARK)
        elif name in (
            "INT",
            "BININT",
            "BININT1",
            "BININT2",
            "LONG",
            "LONG1",
            "LONG4",
            "FLOAT",
            "BINFLOAT",
            "STRING",
            "BINSTRING",
            "SHORT_BINSTRING",
            "UNICODE",
            "BINUNICODE",
            "SHORT_BINUNICODE",
            "BINUNICODE8",
            "BINBYTES",
            "SHORT_BINBYTES",
            "BINBYTES8",
            "BYTEARRAY8",
        ):
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name == "NEWTRUE":
            stack.append(True)
        elif name == "NEWFALSE":
            stack.append(False)
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "TUPLE":
            stack.append(tuple(_pop_mark(stack)))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            members = tuple(stack[-n:])
            del stack[-n:]
            stack.append(members)
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(_pop_mark(stack))
        elif name == "APPEND":
            value = stack.pop()
            if isinstance(stack[-1], list):
                stack[-1].append(value)
        elif name == "APPENDS":
            items = _pop_mark(stack)
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "DICT":
            items = _pop_mark(stack)
            stack.append({_hashable(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)})
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            if isinstance(stack[-1], dict):
                stack[-1][_hashable(key)] = value
        elif name == "SETITEMS":
            items = _pop_mark(stack)
            if isinstance(stack[-1], dict):
                for i in range(0, len(items) - 1, 2):
                    stack[-1][_hashable(items[i])] = items[i + 1]
        elif name == "EMPTY_SET":
            stack.append([])
        elif name == "ADDITEMS":
            items = _pop_mark(stack)
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif name == "FROZENSET":
            stack.append(_pop_mark(stack))
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            g = _Global(module, attr)
            globals_seen.add(g)
            if name == "GLOBAL":
                stack.append(g)
            else:
                stack.append(_Call(g, tuple(_pop_mark(stack))))
        elif name == "STACK_GLOBAL":
            attr, module = stack.pop(), stack.pop()
            if not isinstance(module, str) or not isinstance(attr, str):
                raise _Unsupported("STACK_GLOBAL with non-string operands")
            g = _Global(module, attr)
            globals_seen.add(g)
            stack.append(g)
        elif name == "REDUCE":
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args))
        elif name == "NEWOBJ":
            args = stack.pop()
            cls = stack.pop()
            stack.append(_Call(cls, args))
        elif name == "NEWOBJ_EX":
            kwargs, args, cls = stack.pop(), stack.pop(), stack.pop()
            stack.append(_Call(cls, (args, kwargs)))
        elif name == "OBJ":
            items = _pop_mark(stack)
            if not items:
                raise _Unsupported("OBJ without class")
            stack.append(_Call(items[0], tuple(items[1:])))
        elif name == "BUILD":
            stack.pop()  # the state; objects stay inert records
        elif name == "BINPERSID":
            stack.append(_storage_from_pid(stack.pop()))
        elif name == "PERSID":
            stack.append(_Storage(None))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            try:
                stack.append(memo[arg])
            except KeyError:
                raise _Unsupported(f"memo {arg} missing") from None
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            _pop_mark(stack)
        elif name == "DUP":
            stack.append(stack[-1])
        else:  # EXT1/2/4, NEXT_BUFFER, READONLY_BUFFER, ...
            raise _Unsupported(name)
    raise _Unsupported("pickle ended without STOP")


def scan_pickle(data: bytes | BinaryIO) -> PickleScan:
    """Interpret one pickle (bytes, or a file positioned at it) without executing it.

    Raises :class:`HeaderError` only when the bytes are not a pickle at all; a pickle
    using opcodes the machine does not model yields ``fallback=True`` with ``strings``.
    """
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    start = source.tell()
    globals_seen: set[_Global] = set()
    try:
        root = _evaluate(pickletools.genops(source), [], {}, globals_seen)
        return PickleScan(root, {str(g) for g in globals_seen}, {str(g) for g in globals_seen if not _is_safe(g)})
    except (_Unsupported, IndexError, TypeError, AttributeError):
        pass
    except ValueError as exc:  # genops: unknown opcode, truncated argument
        raise HeaderError(f"corrupt pickle ({exc})") from None
    # Names-only fallback: every string constant that looks like a dotted tensor name.
    source.seek(start)
    strings: list[str] = []
    try:
        for opcode, arg, _pos in pickletools.genops(source):
            if isinstance(arg, str) and opcode.name != "GLOBAL":
                strings.append(arg)
            elif opcode.name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                globals_seen.add(_Global(module, attr))
            if opcode.name == "STOP":
                break
    except ValueError as exc:
        raise HeaderError(f"corrupt pickle ({exc})") from None
    return PickleScan(
        None,
        {str(g) for g in globals_seen},
        {str(g) for g in globals_seen if not _is_safe(g)},
        fallback=True,
        strings=strings,
    )


#: Wrappers around the real state dict in common training outputs (Lightning, BasicSR).
_WRAPPER_KEYS = ("state_dict", "params_ema", "params", "model_state_dict", "module")


#: Bounds on walking the modelled object: shared/cyclic references (memo GETs) could
#: otherwise make a small hostile pickle describe an exponentially large tree.
_MAX_DEPTH = 8
_MAX_NODES = 1_000_000


def _flatten(obj: Any, prefix: str, out: dict[str, TensorInfo], budget: list[int], depth: int = 0) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise HeaderError("pickle structure too large")
    if isinstance(obj, _Tensor):
        out[prefix] = TensorInfo(obj.shape, obj.dtype)
    elif isinstance(obj, dict) and depth < _MAX_DEPTH:
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, budget, depth + 1)


def _tensors_of(scan: PickleScan) -> tuple[dict[str, TensorInfo], str | None]:
    """The state dict's tensors (unwrapping ``state_dict``/``params_ema``), and the wrapper used."""
    if scan.fallback:
        names = [s for s in scan.strings or () if "." in s and " " not in s and len(s) < 512]
        return {n: TensorInfo(None, None) for n in dict.fromkeys(names)}, None
    root = scan.root
    wrapper = None
    if isinstance(root, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(root.get(key), dict) and root[key]:
                root, wrapper = root[key], key
                break
    tensors: dict[str, TensorInfo] = {}
    _flatten(root, "", tensors, [_MAX_NODES])
    if not tensors and isinstance(root, dict):
        # No torch tensors modelled (e.g. a dict of names to other objects): the key
        # names alone still classify most files.
        _flatten_names(root, "", tensors, [_MAX_NODES])
    return tensors, wrapper


def _flatten_names(
    obj: dict[Any, Any], prefix: str, out: dict[str, TensorInfo], budget: list[int], depth: int = 0
) -> None:
    for key, value in obj.items():
        budget[0] -= 1
        if budget[0] < 0:
            raise HeaderError("pickle structure too large")
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and depth < _MAX_DEPTH:
            _flatten_names(value, name, out, budget, depth + 1)
        elif isinstance(key, str):
            out[name] = TensorInfo(None, None)


def _header(scan: PickleScan, fmt: str, extra: dict[str, Any]) -> Header:
    tensors, wrapper = _tensors_of(scan)
    details = dict(extra)
    if wrapper:
        details["wrapper"] = wrapper
    if scan.fallback:
        details["pickle_fallback"] = True
    if scan.unsafe_globals:
        details["unsafe_globals"] = sorted(scan.unsafe_globals)
    return Header(fmt, tensors, {}, details)


def read_torch_zip(path: Path) -> Header:
    """Read ``data.pkl`` from a torch zip checkpoint; :class:`HeaderError` if it is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
            if not members:
                raise HeaderError("zip archive has no data.pkl (not a PyTorch checkpoint)")
            info = min(members, key=lambda i: i.filename.count("/"))
            if info.file_size > MAX_PICKLE_BYTES:
                raise HeaderError(f"data.pkl too large ({info.file_size} bytes)")
            data = archive.read(info)
    except zipfile.BadZipFile as exc:
        raise HeaderError(f"not a zip archive ({exc})") from None
    except (zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        raise HeaderError(f"unreadable zip archive ({exc})") from None
    return _header(scan_pickle(data), "torch_zip", {})


class _Bounded:
    """A read-only view of a file that ends after ``limit`` bytes (a short read past it
    makes genops fail cleanly), so a hostile legacy pickle cannot make us parse GBs."""

    def __init__(self, file: BinaryIO, limit: int) -> None:
        self.file = file
        self.limit = limit

    def read(self, n: int = -1) -> bytes:
        left = max(0, self.limit - self.file.tell())
        return self.file.read(left if n < 0 else min(n, left))

    def readline(self) -> bytes:
        left = max(0, self.limit - self.file.tell())
        return self.file.readline(left)

    def tell(self) -> int:
        return self.file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)


def read_torch_legacy(path: Path, file: BinaryIO) -> Header:
    """Read the pre-1.6 format: magic, protocol, sys info, then the object pickle."""
    file.seek(0)
    bounded: Any = _Bounded(file, MAX_PICKLE_BYTES)
    try:
        first = scan_pickle(bounded)
    except HeaderError:
        first = None
    if first is None or first.root != _LEGACY_MAGIC:
        raise HeaderError("not a zip archive (nor a legacy PyTorch pickle)")
    for _ in range(2):  # protocol version, sys info
        scan_pickle(bounded)
    return _header(scan_pickle(bounded), "torch_legacy", {})
