"""A bounded, symbolic pickle machine: reads what a pickle *would* build, never builds it.

``pickle.load`` imports whatever module a pickle names and calls whatever it is told to,
which is how a checkpoint runs ``os.system``. This walker steps through the opcodes with
``pickletools.genops`` (which only decodes) and keeps a stack of plain values and
symbolic ``Global``/``Call`` records. It imports nothing and calls nothing.

Two uses:

* ``scan_pickle`` lists every global a pickle references and which of them it would
  call, for the ``weights.unsafe-pickle`` rule; it never fails on unknown globals.
* ``torch_state`` interprets only PyTorch's tensor-rebuild calls, ``OrderedDict`` and
  storage records, and fails closed (``UnsafePickle``) on any other callable.

Work is bounded by ``MAX_OPS`` opcodes, ``MAX_BYTES`` of input, ``MAX_STACK`` values and
``MAX_MEMO`` memo entries (a hostile 16 MB pickle costs a few seconds and a few hundred MB
at worst; a real state dict needs a few thousand opcodes). Values built from the stream
are never hashed, compared or ``repr``-ed beyond one level: a tuple nested a million deep
(a few bytes per level) would overflow the C stack in ``hash()``, so only flat keys are
kept (``_is_key``), and the state dict is walked to a fixed depth (``tensors_in``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 64 * 1024 * 1024
MAX_OPS = 2_000_000
MAX_STACK = 1_000_000
MAX_MEMO = 1_000_000

TORCH_REBUILDS = frozenset({
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
})
SAFE_CALLABLES = TORCH_REBUILDS | {"collections.OrderedDict", "builtins.set",
                                   "builtins.frozenset", "builtins.slice", "builtins.complex",
                                   "torch.Size"}
STORAGE_DTYPES = {
    "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16",
    "BFloat16Storage": "BF16", "LongStorage": "I64", "IntStorage": "I32",
    "ShortStorage": "I16", "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL",
}
SAFE_GLOBALS = SAFE_CALLABLES | {f"torch.{name}" for name in STORAGE_DTYPES} | {
    "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64",
    "torch.int32", "torch.int8", "torch.uint8", "torch.bool", "torch.storage.UntypedStorage",
    "torch._tensor._rebuild_from_type_v2", "numpy.dtype", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct", "numpy.ndarray", "_codecs.encode",
}
"""Globals that load data and nothing else; anything outside is reported."""

DANGEROUS_PREFIXES = (
    "os.", "posix.", "nt.", "subprocess.", "builtins.exec", "builtins.eval", "builtins.compile",
    "builtins.__import__", "builtins.getattr", "builtins.open", "builtins.setattr",
    "builtins.globals", "builtins.breakpoint", "__builtin__.", "runpy.", "socket.", "shutil.",
    "importlib.", "pty.", "sys.", "webbrowser.", "marshal.", "types.", "ctypes.", "pickle.",
    "_pickle.", "code.", "commands.", "pip.", "requests.", "urllib.", "http.", "asyncio.",
    "multiprocessing.", "platform.popen", "operator.attrgetter", "operator.methodcaller",
    # Known bypasses of the list above (each runs a string as code, a command or a loader):
    "_operator.attrgetter", "_operator.methodcaller", "_posixsubprocess.", "timeit.", "pydoc.",
    "pdb.", "bdb.", "cProfile.", "profile.", "trace.", "venv.", "ssl.", "aiohttp.", "httplib.",
    "io.", "_io.", "tempfile.", "functools.partial", "builtins.apply", "builtins.vars",
    "builtins.delattr", "numpy.testing._private.utils.runstring", "torch.load",
    "torch.serialization.load", "torch.hub.", "torch.jit.load", "torch.package.",
)
"""Globals that run code, spawn processes, touch files or the network: critical findings."""


class PickleError(ValueError):
    """The stream is not a pickle this walker can read (corrupt, too large, too deep)."""


class UnsafePickle(PickleError):
    """The pickle calls something outside the allowlist: refused, never run."""

    def __init__(self, name: str) -> None:
        super().__init__(f"pickle calls {name}, which is not a tensor rebuild: refused")
        self.name = name


@dataclass(frozen=True)
class Global:
    """A reference to ``module.name``, recorded instead of imported."""

    name: str


@dataclass
class Call:
    """What calling a global would have produced, kept symbolically."""

    func: str
    args: Any
    state: Any = None


@dataclass(frozen=True)
class Persistent:
    """A persistent id: in torch checkpoints, ``('storage', type, key, location, numel)``."""

    pid: Any


@dataclass
class TensorRef:
    """A tensor as a checkpoint describes it: which storage, where, and its layout."""

    storage_key: str
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_numel: int = -1


@dataclass
class ScanResult:
    """Every global a pickle names, which it calls, and whether it ended properly."""

    globals: list[str] = field(default_factory=list)
    called: list[str] = field(default_factory=list)
    complete: bool = True
    error: str = ""

    @property
    def unsafe(self) -> list[str]:
        return sorted({g for g in self.globals if g not in SAFE_GLOBALS})

    @property
    def dangerous(self) -> list[str]:
        return [g for g in self.unsafe if is_dangerous(g)]


DANGEROUS_PARTS = frozenset({"os", "posix", "nt", "subprocess", "system", "popen", "exec", "eval",
                             "__import__", "builtins", "__builtins__", "sys", "runpy", "getattr",
                             "compile", "__globals__", "__subclasses__", "socket", "shutil"})
"""Since protocol 4 a global's name may be a dotted path walked with ``getattr`` from its
module (``torch`` + ``serialization.os.system`` is ``os.system``): any such step is critical."""


def is_dangerous(name: str) -> bool:
    if name.startswith(DANGEROUS_PREFIXES):
        return True
    return any(part in DANGEROUS_PARTS for part in name.split(".")[1:])


_MARK = object()


class _Machine:
    """The stack machine. ``strict`` refuses calls outside ``SAFE_CALLABLES``."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.result = ScanResult()

    # -- helpers -------------------------------------------------------------------
    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise PickleError("MARK missing")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def pop(self) -> Any:
        if not self.stack:
            raise PickleError("stack underflow")
        return self.stack.pop()

    def call(self, func: Any, args: Any) -> Any:
        name = func.name if isinstance(func, Global) else repr(type(func).__name__)
        self.result.called.append(name)
        if name not in SAFE_CALLABLES:
            if self.strict:
                raise UnsafePickle(name)
            return Call(name, args)
        if name == "collections.OrderedDict":
            return {}
        if name in ("builtins.set", "builtins.frozenset"):
            return set()
        if name in TORCH_REBUILDS:
            return _rebuild(name, args, self.strict)
        return Call(name, args)

    # -- the opcodes ---------------------------------------------------------------
    def run(self, stream: io.BytesIO) -> Any:
        import pickletools  # its opcode tables cost 10 ms to build: only when a pickle is met

        ops = 0
        for op, arg, _pos in pickletools.genops(stream):
            ops += 1
            if ops > MAX_OPS or len(self.stack) > MAX_STACK:
                raise PickleError("pickle too large to walk")
            name = op.name
            if name == "STOP":
                return self.pop()
            self.step(name, arg)
        raise PickleError("no STOP opcode")

    def step(self, name: str, arg: Any) -> None:  # noqa: C901 - one branch per opcode
        st = self.stack
        if name in ("PROTO", "FRAME"):
            return
        if name == "MARK":
            self.marks.append(len(st))
        elif name in ("BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4",
                      "BINFLOAT", "FLOAT", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
                      "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING", "SHORT_BINBYTES",
                      "BINBYTES", "BINBYTES8", "BYTEARRAY8"):
            st.append(arg)
        elif name == "NONE":
            st.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            st.append(name == "NEWTRUE")
        elif name in ("EMPTY_DICT",):
            st.append({})
        elif name == "EMPTY_LIST":
            st.append([])
        elif name == "EMPTY_TUPLE":
            st.append(())
        elif name in ("EMPTY_SET",):
            st.append(set())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(st) < n:
                raise PickleError("stack underflow")
            items = tuple(st[-n:])
            del st[-n:]
            st.append(items)
        elif name == "TUPLE":
            st.append(tuple(self.pop_mark()))
        elif name == "LIST":
            st.append(list(self.pop_mark()))
        elif name == "DICT":
            items = self.pop_mark()
            st.append(_pairs(items))
        elif name == "FROZENSET":
            self.pop_mark()
            st.append(frozenset())
        elif name == "APPEND":
            value = self.pop()
            _append(self.top(), [value])
        elif name == "APPENDS":
            values = self.pop_mark()
            _append(self.top(), values)
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            _setitems(self.top(), [(key, value)])
        elif name == "SETITEMS":
            items = self.pop_mark()
            _setitems(self.top(), list(_pairs(items).items()) if _hashable(items) else [])
        elif name == "ADDITEMS":
            self.pop_mark()
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if len(self.memo) >= MAX_MEMO:
                raise PickleError("pickle memo too large to walk")
            self.memo[len(self.memo) if name == "MEMOIZE" else int(arg)] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in self.memo:
                raise PickleError("memo key missing")
            st.append(self.memo[int(arg)])
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            st.append(self.glob(module, attr))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            if not isinstance(module, str) or not isinstance(attr, str):
                raise PickleError("STACK_GLOBAL needs two strings")
            st.append(self.glob(module, attr))
        elif name == "REDUCE":
            args, func = self.pop(), self.pop()
            st.append(self.call(func, args))
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            if name == "NEWOBJ_EX":
                self.pop()
            args, cls = self.pop(), self.pop()
            st.append(self.call(cls, args))
        elif name in ("INST", "OBJ"):
            items = self.pop_mark()
            if name == "INST":
                module, _, attr = str(arg).partition(" ")
                st.append(self.call(self.glob(module, attr), tuple(items)))
            else:
                if not items:
                    raise PickleError("OBJ without a class")
                st.append(self.call(items[0], tuple(items[1:])))
        elif name == "BUILD":
            state = self.pop()
            target = self.top()
            if isinstance(target, Call):
                target.state = state
                self.result.called.append(f"{target.func}.__setstate__")
                if self.strict and target.func not in SAFE_CALLABLES:
                    raise UnsafePickle(target.func)
            elif self.strict and not isinstance(target, (TensorRef, dict)):
                raise UnsafePickle(f"BUILD on {type(target).__name__}")
        elif name in ("BINPERSID", "PERSID"):
            pid = self.pop() if name == "BINPERSID" else arg
            st.append(Persistent(pid))
        elif name == "POP":
            if st:
                st.pop()
            elif self.marks:  # POP on a bare MARK
                self.marks.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            st.append(self.top())
        elif name in ("EXT1", "EXT2", "EXT4"):
            if self.strict:
                raise UnsafePickle(f"extension registry code {arg}")
            st.append(Global(f"copyreg.extension.{arg}"))
            self.result.globals.append(f"copyreg.extension.{arg}")
        elif name == "NEXT_BUFFER" or name == "READONLY_BUFFER":
            if self.strict:
                raise UnsafePickle("out-of-band buffers")
            st.append(None)
        else:
            raise PickleError(f"unsupported opcode {name}")

    def top(self) -> Any:
        if not self.stack:
            raise PickleError("stack underflow")
        return self.stack[-1]

    def glob(self, module: str, attr: str) -> Global:
        # Protocol 2 and older spell Python 3 modules by their Python 2 names.
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        name = f"{module}.{attr}"
        self.result.globals.append(name)
        if self.strict and name not in SAFE_GLOBALS:
            raise UnsafePickle(name)
        return Global(name)


def _hashable(items: list[Any]) -> bool:
    return all(_is_key(k) for k in items[0::2])


_SCALARS = (str, int, float, bytes, bool, type(None))


def _is_key(value: Any) -> bool:
    """A dict key the walker keeps: a scalar or a flat tuple of scalars, cheap to hash."""
    if isinstance(value, tuple):
        return all(isinstance(v, _SCALARS) for v in value)
    return isinstance(value, _SCALARS)


def _pairs(items: list[Any]) -> dict[Any, Any]:
    if len(items) % 2:
        raise PickleError("odd number of dict items")
    return {k: v for k, v in zip(items[0::2], items[1::2]) if _is_key(k)}


def _append(target: Any, values: list[Any]) -> None:
    if isinstance(target, list):
        target.extend(values)


def _setitems(target: Any, items: list[tuple[Any, Any]]) -> None:
    if isinstance(target, dict):
        for key, value in items:
            if _is_key(key):
                target[key] = value


def _rebuild(name: str, args: Any, strict: bool) -> Any:
    """``_rebuild_tensor_v2(storage, offset, size, stride, ...)`` -> ``TensorRef``."""
    if not isinstance(args, tuple) or not args:
        raise PickleError(f"{name}: bad arguments")
    if name.startswith("torch._utils._rebuild_parameter"):
        return args[0]
    if len(args) < 4:
        raise PickleError(f"{name}: bad arguments")
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, Persistent):
        if strict:
            raise PickleError(f"{name}: storage is not a persistent record")
        return Call(name, args)
    pid = storage.pid
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise PickleError("unknown persistent id")
    dtype = STORAGE_DTYPES.get(pid[1].name.rsplit(".", 1)[-1], "") if isinstance(
        pid[1], Global) else ""
    if not dtype:
        raise PickleError(f"unknown storage type ({type(pid[1]).__name__})")
    if not (isinstance(offset, int) and offset >= 0 and _ints(size) and _ints(stride)
            and len(size) == len(stride)):
        raise PickleError(f"{name}: bad layout")
    numel = pid[4] if isinstance(pid[4], int) else -1
    return TensorRef(str(pid[2]), dtype, offset, tuple(size), tuple(stride), numel)


def _ints(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, int) and v >= 0 for v in value)


def scan_pickle(data: bytes, count: int = 1) -> ScanResult:
    """List the globals of ``count`` consecutive pickles in ``data`` (never raises)."""
    machine = _Machine(strict=False)
    stream = io.BytesIO(data[:MAX_BYTES])
    try:
        for _ in range(count):
            machine.stack.clear()
            machine.marks.clear()
            machine.run(stream)
    except (PickleError, ValueError, EOFError, OverflowError, UnicodeDecodeError,
            MemoryError, IndexError, KeyError, TypeError, RecursionError) as exc:
        machine.result.complete = False
        machine.result.error = str(exc)[:200]
    return machine.result


def looks_like_pickle(head: bytes) -> bool:
    """Whether a file's first bytes decode as pickle opcodes up to STOP or to their end.

    Only decodes (no walk): cheap enough to ask of every file that ends like a pickle, so
    a payload behind a harmless prefix (``I0\\n0cos\\nsystem...``, valid since protocol 0)
    is walked too. Text fails within a few bytes, on an unknown opcode or a bad argument.
    """
    import pickletools

    stream = io.BytesIO(head)
    try:
        for op, _arg, _pos in pickletools.genops(stream):
            if op.name == "STOP":
                return True
    except (ValueError, EOFError, OverflowError, UnicodeDecodeError):
        return stream.tell() >= len(head)  # ran out of bytes, not out of sense
    return bool(head)


def torch_state(data: bytes, stream: io.BytesIO | None = None) -> Any:
    """Interpret one pickle strictly: tensors come back as ``TensorRef``; fails closed."""
    machine = _Machine(strict=True)
    if stream is None:
        if len(data) > MAX_BYTES:
            raise PickleError("pickle larger than the walker's limit")
        stream = io.BytesIO(data)
    try:
        return machine.run(stream)
    except UnsafePickle:
        raise
    except (PickleError, ValueError, EOFError, OverflowError, UnicodeDecodeError,
            MemoryError, IndexError, KeyError, TypeError, RecursionError) as exc:
        raise PickleError(f"unreadable pickle: {exc}") from None


def tensors_in(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, TensorRef]]:
    """Every ``TensorRef`` in a state dict (nested dicts/lists), with dotted names."""
    if depth > 32:
        raise PickleError("state dict nested too deep")
    found: list[tuple[str, TensorRef]] = []
    if isinstance(obj, TensorRef):
        return [(prefix or "tensor", obj)]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += tensors_in(value, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found += tensors_in(value, f"{prefix}.{i}" if prefix else str(i), depth + 1)
    return found
