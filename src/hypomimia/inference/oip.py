"""The Open Inference Protocol (KServe v2; what Triton, KServe and Seldon speak) for the tube route:
parsing requests and encoding answers, with JSON tensors and Triton's binary tensor data extension.

    POST /v2/models/{name}/infer
      {"id": "...", "parameters": {"subject_ref": "pt-0042"},
       "inputs": [{"name": "tube", "datatype": "UINT8", "shape": [T, S, S, 3], "data": [...]}]}
    -> {"model_name", "model_version", "id", "parameters": {"request_id", "abstained", ...},
        "outputs": [{"name": "p_pd", "datatype": "FP64", "shape": [1], "data": [0.71]},
                    {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["pd"]},
                    {"name": "embedding", "datatype": "FP32", "shape": [D], "data": [...]}]}

The tube is the one ``/predict_tube`` takes (``T x S x S x 3`` uint8 face-tube frames); the endpoint
answers it on /predict_tube's path (``predictor.check_tube``, the evaluation clips, the batched model),
so both routes give the same P(PD).

Binary tensor data (tritonclient's default): the body is the JSON header followed by the raw tensor
bytes, ``Inference-Header-Content-Length`` says how long the header is, and each binary input carries
``parameters.binary_data_size``. Outputs go binary when asked (``parameters.binary_data`` on an
output, ``binary_data_output`` on the request), with the same header on the answer; a BYTES element is
a 4-byte little-endian length and its bytes. Numbers are little-endian, row-major.

No HTTP here: the endpoint (``serving/protocols.py``) hands bodies and headers in and sends what
comes out. Errors are :class:`OipError`: an HTTP status and the protocol's ``{"error": ...}`` body
(with this endpoint's ``reason`` and ``fix`` next to it).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BINARY_HEADER = "Inference-Header-Content-Length"
TUBE_INPUT = "tube"
PLATFORM = "pytorch"
# The numeric datatypes a tensor may have (BYTES only in answers): little-endian, as the extension says.
DTYPES = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}  # fmt: skip
FIX = "send an Open Inference Protocol v2 request: JSON with 'inputs' (or tritonclient's binary tensors)"


class OipError(Exception):
    """A request the protocol layer refuses: ``status`` and the ``{"error", "reason", "fix"}`` body."""

    def __init__(self, status: int, error: str, reason: str = "bad_inference_request", fix: str = FIX):
        super().__init__(error)
        self.status, self.error, self.reason, self.fix = status, error, reason, fix

    def body(self) -> dict[str, str]:
        return {"error": self.error, "reason": self.reason, "fix": self.fix}


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray  # decoded, already in ``shape``


@dataclass
class InferRequest:
    inputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] | None = None  # the outputs asked for, as sent; None = all


@dataclass
class Output:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[str]


# -- metadata -----------------------------------------------------------------------------------------
def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "hypomimia", "version": version, "extensions": ["binary_tensor_data"]}


def model_metadata(name: str, version: str | None, tube_side: int, embed_dim: int) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the tube in, P(PD), the label and the embedding out."""
    return {
        "name": name,
        "versions": [version] if version else [],
        "platform": PLATFORM,
        "inputs": [{"name": TUBE_INPUT, "datatype": "UINT8", "shape": [-1, tube_side, tube_side, 3]}],
        "outputs": [
            {"name": "p_pd", "datatype": "FP64", "shape": [1]},
            {"name": "label", "datatype": "BYTES", "shape": [1]},
            {"name": "embedding", "datatype": "FP32", "shape": [embed_dim]},
        ],
    }


def check_model(name: str, version: str | None, served_name: str, served_version: str | None) -> None:
    """404 unless ``name`` (and ``version``, when the path has one) is the model this server serves."""
    if name != served_name:
        raise OipError(404, f"unknown model '{name}'", "unknown_model", f"this server serves '{served_name}'")
    if version is not None and version != served_version:
        have = f"version {served_version}" if served_version else "an unversioned local model"
        raise OipError(404, f"model '{name}' has no version '{version}'", "unknown_version",
                       f"this server serves {have}; leave the version out of the path")  # fmt: skip


# -- requests -----------------------------------------------------------------------------------------
def parse_infer_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """An infer request's JSON header and tensors; ``header_length``: the binary extension's header."""
    binary = b""
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise OipError(400, f"{BINARY_HEADER} is '{header_length}' for a body of {len(body)} bytes",
                           fix=f"{BINARY_HEADER} must be the byte length of the JSON header")  # fmt: skip
        n = int(header_length)
        body, binary = body[:n], body[n:]
    try:
        head = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise OipError(400, "the request is not JSON", fix=FIX + f" ({BINARY_HEADER} for binary tensors)") from None  # fmt: skip
    if not isinstance(head, dict) or not isinstance(head.get("inputs"), list) or not head["inputs"]:
        raise OipError(400, "the request has no 'inputs' list")
    params = head.get("parameters") or {}
    outputs = head.get("outputs")
    if not isinstance(params, dict) or (outputs is not None and not isinstance(outputs, list)):
        raise OipError(400, "'parameters' must be an object and 'outputs' a list")
    inputs, offset = [], 0
    for spec in head["inputs"]:
        tensor, offset = _read_input(spec, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise OipError(400, f"{len(binary) - offset} bytes of binary data belong to no input",
                       fix="give every binary input its parameters.binary_data_size")  # fmt: skip
    rid = head.get("id")
    return InferRequest(inputs, None if rid is None else str(rid), params, outputs)


def _read_input(spec: Any, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise OipError(400, "every input needs a 'name', a 'datatype' and a 'shape'")
    name, datatype, shape = spec["name"], spec.get("datatype"), spec.get("shape")
    if datatype not in DTYPES:
        raise OipError(400, f"input '{name}': datatype {datatype!r} is not supported",
                       fix=f"use one of {', '.join(DTYPES)} (the tube is UINT8)")  # fmt: skip
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise OipError(400, f"input '{name}': shape must be a list of non-negative integers, got {shape!r}")
    dtype, count = DTYPES[datatype], math.prod(shape)
    params = spec.get("parameters") or {}
    if any(k.startswith("shared_memory") for k in params):
        raise OipError(
            400, f"input '{name}': shared memory is not supported", fix="send the data in the request"
        )
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        if not isinstance(size, int) or size != count * dtype.itemsize or offset + size > len(binary):
            raise OipError(400, f"input '{name}': binary_data_size {size!r} does not fit shape {shape} "
                           f"{datatype} ({count * dtype.itemsize} bytes) or the {len(binary) - offset} bytes left")  # fmt: skip
        data = np.frombuffer(binary, dtype, count, offset).reshape(shape)
        return Tensor(name, datatype, tuple(shape), data), offset + size
    if "data" not in spec:
        raise OipError(400, f"input '{name}' has neither 'data' nor parameters.binary_data_size")
    return Tensor(name, datatype, tuple(shape), _json_data(name, spec["data"], dtype, shape)), offset


def _json_data(name: str, data: Any, dtype: np.dtype, shape: list[int]) -> np.ndarray:
    """JSON tensor data, flat or nested, row-major; values must fit the datatype (no silent wrap)."""
    try:
        raw = np.asarray(data)
    except ValueError:
        raise OipError(400, f"input '{name}': ragged nested data") from None
    if raw.size != math.prod(shape):
        raise OipError(400, f"input '{name}': {raw.size} values for shape {shape}")
    if raw.size and raw.dtype.kind not in "biuf":
        raise OipError(400, f"input '{name}': data must be numbers")
    if raw.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
            raise OipError(400, f"input '{name}': {dtype.name} data must be integers")
        if raw.min() < info.min or raw.max() > info.max:
            raise OipError(400, f"input '{name}': values outside {info.min}..{info.max}")
    return raw.astype(dtype).reshape(shape)


def tube_input(request: InferRequest) -> np.ndarray:
    """The request's face tube: its one input, named ``tube``, UINT8 (shape checked on /predict_tube's path)."""
    names = [t.name for t in request.inputs]
    if names != [TUBE_INPUT]:
        raise OipError(400, f"expected one input named '{TUBE_INPUT}', got {names}",
                       fix=f"send the face tube as the input '{TUBE_INPUT}', UINT8 [T, S, S, 3]")  # fmt: skip
    tube = request.inputs[0]
    if tube.datatype != "UINT8":
        raise OipError(
            400, f"input '{TUBE_INPUT}' is {tube.datatype}", fix="send the tube's frames as UINT8 (0..255)"
        )
    return tube.data


def text_parameter(request: InferRequest, key: str) -> str:
    """A request parameter the endpoint reads (``subject_ref``, ``session``): a string or absent."""
    value = request.parameters.get(key, "")
    if not isinstance(value, str):
        raise OipError(
            400, f"parameter '{key}' must be a string", fix="send a pseudonymous code such as 'pt-0042'"
        )
    return value


# -- answers ------------------------------------------------------------------------------------------
def answer_outputs(answer: dict[str, Any], embedding: list[float]) -> list[Output]:
    """The endpoint's answer as the model's outputs (see :func:`model_metadata`)."""
    return [
        Output("p_pd", "FP64", (1,), np.array([answer["p_pd"]], np.float64)),
        Output("label", "BYTES", (1,), [answer["label"]]),
        Output("embedding", "FP32", (len(embedding),), np.asarray(embedding, np.float32)),
    ]


def encode_infer_response(
    request: InferRequest,
    outputs: list[Output],
    *,
    model_name: str,
    model_version: str | None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (content type, and the binary header when any output is binary)."""
    wanted = {o.name: o for o in outputs}
    asked = request.outputs if request.outputs is not None else [{"name": o.name} for o in outputs]
    binary_default = bool(request.parameters.get("binary_data_output", False))
    head_outputs, blobs = [], []
    for spec in asked:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in wanted:
            raise OipError(400, f"unknown output {name!r}", fix=f"ask for any of {', '.join(wanted)}")
        out, params = wanted[name], spec.get("parameters") or {}
        item: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": list(out.shape)}
        if params.get("binary_data", binary_default):
            blob = _to_bytes(out)
            item["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            item["data"] = (
                list(out.data) if out.datatype == "BYTES" else np.asarray(out.data).ravel().tolist()
            )
        head_outputs.append(item)
    head: dict[str, Any] = {"model_name": model_name, "model_version": model_version or ""}
    if request.id is not None:
        head["id"] = request.id
    if parameters:
        head["parameters"] = parameters
    head["outputs"] = head_outputs
    data = json.dumps(head).encode()
    if not blobs:
        return data, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", BINARY_HEADER.lower(): str(len(data))}
    return data + b"".join(blobs), headers


def _to_bytes(out: Output) -> bytes:
    if out.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in (str(s).encode() for s in out.data))
    return np.ascontiguousarray(out.data, DTYPES[out.datatype]).tobytes()


def decode_infer_response(body: bytes, header_length: str | None = None) -> dict[str, np.ndarray | list[str]]:
    """The outputs of a response (JSON or binary), by name: for tests and clients without tritonclient."""
    binary = b""
    if header_length is not None:
        body, binary = body[: int(header_length)], body[int(header_length) :]
    head, out, offset = json.loads(body), {}, 0
    for item in head["outputs"]:
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is None:
            data = item["data"]
            out[item["name"]] = (
                list(data) if item["datatype"] == "BYTES" else np.asarray(data, DTYPES[item["datatype"]])
            )
            continue
        chunk, offset = binary[offset : offset + size], offset + size
        if item["datatype"] == "BYTES":
            values, i = [], 0
            while i < len(chunk):
                (n,) = struct.unpack_from("<I", chunk, i)
                values.append(chunk[i + 4 : i + 4 + n].decode())
                i += 4 + n
            out[item["name"]] = values
        else:
            out[item["name"]] = np.frombuffer(chunk, DTYPES[item["datatype"]]).reshape(item["shape"])
    return out
