"""The bytes that cross the pipe between the grader and the isolated child.

Two formats, one per direction, both built for a probe's round trip costing well under a
millisecond (``torch.save`` / ``torch.load(weights_only=True)`` cost several on a payload of
sixty tensors, which a model's parameter gradients are):

- **Replies** (child → grader, untrusted; also reference results in the disk cache): a JSON
  header describing the plain-data structure, then the tensors' raw bytes. The grader parses
  the header with :func:`json.loads`, which builds nothing but dicts, lists, strings, numbers,
  booleans and None, and makes each tensor from a bounds-checked slice of the bytes, with a
  dtype from a fixed list. Nothing is unpickled, so no learner object can reach the grader.
- **Requests** (grader → child, trusted): a pickle whose tensor storages travel as raw bytes
  beside it (as ``torch.save`` does, without its zip container). Plain pickling only, never
  multiprocessing's shared-memory tensor passing, which needs a channel (a socket in /tmp) that
  a sandbox does not share.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from typing import Any

import torch

from course.grading.encode import EncodeError

REPLY_MAGIC = b"CRW1"
REQUEST_MAGIC = b"CRQ1"
ALIGN = 16
# the key that marks a tensor in a reply's header; a payload's own dicts may not use it
TENSOR_KEY = "\x00tensor"
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
    torch.complex128, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.bool,
)}
MAX_DIMS = 64


class WireError(ValueError):
    """Bytes that are not a well-formed message (a corrupt or forged reply)."""


def _as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor's values as a flat uint8 CPU tensor (conjugate and negative views resolved)."""
    flat = tensor.detach().resolve_conj().resolve_neg().to("cpu").reshape(-1)
    if not flat.numel():
        return torch.empty(0, dtype=torch.uint8)
    if flat.stride(0) != 1:  # one element, or a view "contiguous" with odd size-1 strides
        flat = torch.empty(flat.shape, dtype=flat.dtype).copy_(flat)
    return flat.view(torch.uint8)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _layout(sizes: list[int]) -> list[int]:
    """Each blob's offset from the start of the data section (aligned, in order)."""
    offsets, end = [], 0
    for size in sizes:
        end = _aligned(end)
        offsets.append(end)
        end += size
    return offsets


def _pack(header: bytes, blobs: list[torch.Tensor], magic: bytes) -> bytes:
    """``magic``, the header's length, the header, then the data section (aligned): each
    blob at its :func:`_layout` offset."""
    sizes = [blob.numel() for blob in blobs]
    offsets = _layout(sizes)
    data = _aligned(len(magic) + 8 + len(header))
    out = bytearray(data + (offsets[-1] + sizes[-1] if blobs else 0))
    out[: len(magic) + 8 + len(header)] = magic + len(header).to_bytes(8, "little") + header
    if blobs:
        view = torch.frombuffer(out, dtype=torch.uint8)
        for offset, blob in zip(offsets, blobs):
            view[data + offset : data + offset + blob.numel()].copy_(blob)
    return bytes(out)


def _unpack(data: bytes, magic: bytes) -> tuple[bytes, bytearray, int]:
    """(header, a writable copy of the whole message, where its data section starts)."""
    if not isinstance(data, (bytes, bytearray)) or data[: len(magic)] != magic:
        raise WireError("not a grader message (wrong header)")
    start = len(magic) + 8
    size = int.from_bytes(data[len(magic) : start], "little")
    if start + size > len(data):
        raise WireError("the message is shorter than its header says")
    return bytes(data[start : start + size]), bytearray(data), _aligned(start + size)


def _slice(buffer: bytearray, base: int, dtype: torch.dtype, shape: Any, offset: Any,
           nbytes: Any) -> torch.Tensor:
    """The tensor stored at ``buffer[base + offset:][:nbytes]``, every field checked."""
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(n) is int and n >= 0 for n in shape)
            or type(offset) is not int or type(nbytes) is not int):
        raise WireError("a tensor record is malformed")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if (nbytes != math.prod(shape) * itemsize or offset < 0 or offset % ALIGN
            or base + offset + nbytes > len(buffer)):
        raise WireError("a tensor record points outside the message")
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    flat = torch.frombuffer(buffer, dtype=torch.uint8, count=nbytes, offset=base + offset)
    return flat.view(dtype).reshape(shape)


# -- replies -------------------------------------------------------------------------------


def to_bytes(payload: Any) -> bytes:
    """A reply (plain data: dicts with string keys, lists, str, int, float, bool, None, and
    plain tensors of the :data:`DTYPES`) as bytes. Raises :class:`EncodeError` on anything
    else."""
    blobs: list[torch.Tensor] = []
    records: list[list] = []

    def plain(value: Any) -> Any:
        kind = type(value)
        if value is None or kind in (bool, int, float, str):
            return value
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            name = str(value.dtype).removeprefix("torch.")
            if name not in DTYPES:
                raise EncodeError(f"a reply holds a tensor of dtype {name}")
            blobs.append(_as_bytes(value))
            records.append([name, list(value.shape), 0, blobs[-1].numel()])
            return {TENSOR_KEY: len(blobs) - 1}
        if kind is list:
            return [plain(v) for v in value]
        if kind is dict:
            if not all(type(k) is str for k in value) or TENSOR_KEY in value:
                raise EncodeError("a reply holds a dict whose keys are not plain strings")
            return {k: plain(v) for k, v in value.items()}
        raise EncodeError(f"a reply holds a {kind.__module__}.{kind.__qualname__}")

    body = plain(payload)
    for record, offset in zip(records, _layout([r[3] for r in records])):
        record[2] = offset
    header = json.dumps({"value": body, "tensors": records}, separators=(",", ":"),
                        allow_nan=True).encode("ascii")
    return _pack(header, blobs, REPLY_MAGIC)


def from_bytes(data: bytes) -> Any:
    """Read :func:`to_bytes`'s bytes into plain data; raises :class:`WireError` on bytes that
    are not such a message. Builds nothing but plain values and tensors."""
    header, buffer, base = _unpack(data, REPLY_MAGIC)
    try:
        parsed = json.loads(header)
    except RecursionError:
        raise WireError("the message is nested too deeply") from None
    except ValueError as exc:
        raise WireError(f"the message's header is not JSON ({exc})") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("tensors"), list):
        raise WireError("the message's header is malformed")
    tensors = []
    for record in parsed["tensors"]:
        if not (isinstance(record, list) and len(record) == 4
                and isinstance(record[0], str) and record[0] in DTYPES):
            raise WireError("a tensor record is malformed")
        tensors.append(_slice(buffer, base, DTYPES[record[0]], *record[1:]))
    return _restore(parsed.get("value"), tensors, 0)


def _restore(value: Any, tensors: list[torch.Tensor], depth: int) -> Any:
    if depth > 64:
        raise WireError("the message is nested too deeply")
    if isinstance(value, list):
        return [_restore(v, tensors, depth + 1) for v in value]
    if isinstance(value, dict):
        if TENSOR_KEY in value:
            index = value[TENSOR_KEY]
            if len(value) != 1 or type(index) is not int or not 0 <= index < len(tensors):
                raise WireError("a tensor reference is malformed")
            return tensors[index]
        return {k: _restore(v, tensors, depth + 1) for k, v in value.items()}
    return value


# -- requests ------------------------------------------------------------------------------


def _rebuild_tensor(*args: Any) -> torch.Tensor:
    """Stands for a tensor in a request's pickle; :func:`request_from_bytes` resolves it."""
    raise WireError("a request's tensors are rebuilt by request_from_bytes only")


def _plain_cpu(tensor: torch.Tensor) -> bool:
    return (tensor.device.type == "cpu" and tensor.layout == torch.strided
            and not tensor.is_quantized and not tensor.is_conj() and not tensor.is_neg()
            and tensor.grad_fn is None and not tensor.__dict__
            and not any(getattr(tensor, "names", None) or ()))


class _RequestPickler(pickle.Pickler):
    """Pickles exact CPU tensors as (storage index, dtype, shape, stride, offset,
    requires_grad), their storages as raw bytes beside the pickle (shared by views, as with
    ``torch.save``); anything unusual (a subclass, a conjugate view) as torch pickles it."""

    def __init__(self, file) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.storages: dict[int, int] = {}  # storage address -> index in blobs
        self.blobs: list[torch.Tensor] = []
        self.dispatch_table = {torch.Tensor: self._reduce_tensor}

    def _reduce_tensor(self, tensor: torch.Tensor) -> Any:
        if not _plain_cpu(tensor):
            return tensor.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key not in self.storages:
            self.storages[key] = len(self.blobs)
            self.blobs.append(torch.empty(0, dtype=torch.uint8).set_(storage))
        dtype = str(tensor.dtype).removeprefix("torch.")
        return (_rebuild_tensor, (self.storages[key], dtype, tuple(tensor.shape),
                                  tensor.stride(), tensor.storage_offset(),
                                  tensor.requires_grad))


def request_to_bytes(request: Any) -> bytes:
    """A grader-to-child request (probe specs hold tensors) as self-contained bytes."""
    buffer = io.BytesIO()
    pickler = _RequestPickler(buffer)
    pickler.dump(request)
    sizes = [blob.numel() for blob in pickler.blobs]
    header = json.dumps(sizes).encode("ascii") + b"\n" + buffer.getvalue()
    return _pack(header, pickler.blobs, REQUEST_MAGIC)


def request_from_bytes(data: bytes) -> Any:
    """Read a request in the child. The grader is trusted, so the full unpickler is used."""
    header, buffer, base = _unpack(data, REQUEST_MAGIC)
    sizes_line, pickled = header.split(b"\n", 1)
    sizes = json.loads(sizes_line)
    storages = [
        torch.frombuffer(buffer, dtype=torch.uint8, count=size, offset=base + offset)
        .untyped_storage() if size else torch.UntypedStorage(0)
        for size, offset in zip(sizes, _layout(sizes))
    ]

    def rebuild(index: int, dtype: str, shape: tuple, stride: tuple, offset: int,
                requires_grad: bool) -> torch.Tensor:
        tensor = torch.empty(0, dtype=getattr(torch, dtype)).set_(
            storages[index], offset, shape, stride)
        return tensor.requires_grad_(requires_grad)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module == __name__ and name == "_rebuild_tensor":
                return rebuild
            return super().find_class(module, name)

    return Unpickler(io.BytesIO(pickled)).load()
