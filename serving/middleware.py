"""ASGI middlewares of the endpoint: API key, body size, form guard (BentoML has none of them built in).

Order (the first added is the outermost): key -> size -> form. So an unauthenticated caller never
gets its body read, and an oversized body is cut off before anything parses it.
"""

from __future__ import annotations

import hmac
import json
from http import HTTPStatus

from bentoml.exceptions import BentoMLException

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/", "/ui"})
FORM_TEXT = "hypomimia.form_text"  # scope key: the checked form's text fields (see FormGuardMiddleware)


async def send_json(send, status: int, body: dict, extra_headers=()) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra_headers]})
    await send({"type": "http.response.body", "body": data})


class ApiKeyMiddleware:
    """401 unless ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` is one of ``keys``.

    Fails closed: with no key configured every protected path answers 401. Every configured key is
    compared (``hmac.compare_digest``, no early exit), so timing tells nothing about which matched.
    """

    def __init__(self, app, keys: list[bytes], open_paths=OPEN_PATHS):
        self.app, self.keys, self.open_paths = app, list(keys), frozenset(open_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"")
        token = auth[7:].strip() if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(token, key)
        if ok and token:
            return await self.app(scope, receive, send)
        await send_json(
            send,
            401,
            {"error": "missing or invalid API key", "reason": "unauthorized",
             "fix": "send the key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"},
            [(b"www-authenticate", b'Bearer realm="hypomimia"')],
        )  # fmt: skip


class _TooLarge(BentoMLException):  # BentoML's API wrapper turns error_code into the HTTP status
    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class MaxBodySizeMiddleware:
    """413 when Content-Length exceeds ``max_bytes``; bodies without one are counted while read."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    def _body(self) -> dict:
        mb = self.max_bytes / 2**20
        return {"error": f"the request body is larger than {mb:g} MB", "reason": "too_large",
                "fix": "send a shorter or smaller clip"}  # fmt: skip

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await send_json(send, 413, self._body())
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self._body()["error"])
            return msg

        async def tracking_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_json(send, 413, self._body())


class FormGuardMiddleware:
    """400 for a multipart form the API would mishandle, before BentoML parses it.

    BentoML answers a file under an unknown field name with a 500, and *downloads* a URL given as
    text in a file field. ``forms`` maps an API path to (its file field, its optional text fields):
    the form must hold exactly that file (a real upload, not text) plus any of the text fields.
    """

    def __init__(self, app, forms: dict[str, tuple[str, frozenset[str]]]):
        self.app, self.forms = app, forms

    async def __call__(self, scope, receive, send):
        form_spec = self.forms.get(scope.get("path", "")) if scope["type"] == "http" else None
        if form_spec is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        file_field, text_fields = form_spec
        chunks, more = [], True
        while more:  # the size middleware above bounds this
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)

        async def replay():
            nonlocal body
            out, body = body, b""
            return {"type": "http.request", "body": out, "more_body": False}

        problem = await self._check(scope, replay, file_field, text_fields)
        if problem:
            reason, error = problem
            fix = f"POST multipart/form-data with the file in the field '{file_field}'"
            if text_fields:
                fix += f" (optional text fields: {', '.join(sorted(text_fields))})"
            return await send_json(send, 400, {"error": error, "reason": reason, "fix": fix})
        body_for_app = b"".join(chunks)

        async def replay_app():
            nonlocal body_for_app
            out, body_for_app = body_for_app, b""
            return {"type": "http.request", "body": out, "more_body": False}

        await self.app(scope, replay_app, send)

    @staticmethod
    async def _check(scope, receive, file_field, text_fields) -> tuple[str, str] | None:
        from starlette.datastructures import UploadFile
        from starlette.requests import Request

        ctype = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        if not ctype.startswith("multipart/form-data"):
            return "bad_form", f"expected a multipart/form-data upload, got '{ctype or 'no content type'}'"
        try:
            form = await Request(scope, receive).form()
        except Exception as e:  # malformed multipart
            return "bad_form", f"the multipart body cannot be parsed ({type(e).__name__})"
        try:
            keys = set(form.keys())
            unknown = keys - {file_field} - set(text_fields)
            if unknown:
                return "unknown_field", f"unexpected form field(s): {', '.join(sorted(unknown))}"
            if file_field not in keys:
                return "missing_field", f"no '{file_field}' field in the form"
            values = form.getlist(file_field)
            if len(values) != 1:
                return "bad_form", f"send exactly one '{file_field}'"
            value = values[0]
            if not isinstance(value, UploadFile):
                text = str(value).strip().lower()
                if "://" in text or text.startswith(("www.", "//")):
                    return (
                        "url_not_allowed",
                        "a URL is not accepted: upload the file itself (the server never fetches URLs)",
                    )
                return "not_a_file", f"'{file_field}' must be an uploaded file, not a text value"
            # the text fields, for an outer middleware that answers in another format (protocols.FhirMiddleware)
            scope[FORM_TEXT] = {k: v for k in text_fields if isinstance(v := form.get(k), str)}
            return None
        finally:
            await form.close()


class GetRoutesMiddleware:
    """Answers a few GET paths itself (the page, the model card summary): ``routes`` maps a path to a
    callable returning (status, content type, bytes or a JSON-able object)."""

    def __init__(self, app, routes: dict):
        self.app, self.routes = app, routes

    async def __call__(self, scope, receive, send):
        route = self.routes.get(scope.get("path")) if scope["type"] == "http" else None
        if route is None or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        status, ctype, body = route()
        if not isinstance(body, bytes):
            body = json.dumps(body, default=str).encode()
        headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
