"""Authorizer adapters (openhi.authorizers): the answer's shape, in-process callables, HTTP endpoints, the registry."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from openhi.authorizers.http import MAX_ANSWER_BYTES, HttpAuthorizer
from openhi.authorizers.port import AuthorizerAnswer, AuthorizerEvent, parse_answer
from openhi.authorizers.python_callable import PythonCallableAuthorizer
from openhi.authorizers.registry import AuthorizerRegistry
from openhi.errors import AuthorizerError, ValidationError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-authorizer"
ROLE = "arn:aws:iam::123456789012:role/DicomWebRead"
EVENT = AuthorizerEvent("0123456789abcdef0123456789abcdef", "GetDICOMInstance", "the.bearer.token")


def raises_code(code: str) -> pytest.RaisesExc[AuthorizerError]:
    return pytest.raises(AuthorizerError, check=lambda e: e.code == code)


# -- the port ----------------------------------------------------------------------------------------------------


def test_event_payload_is_the_guides_shape() -> None:
    assert EVENT.to_payload() == {
        "datastoreId": "0123456789abcdef0123456789abcdef",
        "operation": "GetDICOMInstance",
        "bearerToken": "the.bearer.token",
    }
    assert "the.bearer.token" not in repr(EVENT)


def test_parse_answer_accepts_both_outcomes_and_ignores_extras() -> None:
    assert parse_answer({"isTokenValid": True, "roleArn": ROLE, "extra": 1}) == AuthorizerAnswer(True, ROLE)
    assert parse_answer({"isTokenValid": False, "roleArn": ""}) == AuthorizerAnswer(False, "")


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "yes",
        [True, ROLE],
        {"roleArn": ROLE},
        {"isTokenValid": "true", "roleArn": ROLE},
        {"isTokenValid": 1, "roleArn": ROLE},
        {"isTokenValid": True},
        {"isTokenValid": True, "roleArn": None},
        {"isTokenValid": True, "roleArn": [ROLE]},
    ],
)
def test_parse_answer_refuses_malformed_answers(raw: object) -> None:
    with raises_code("AuthorizerMisconfigurationException"):
        parse_answer(raw)


# -- python callables --------------------------------------------------------------------------------------------

MODULE_SOURCE = """
import time

calls = []

def ok(event, context):
    calls.append((event, context.invoked_function_arn, context.function_name, context.get_remaining_time_in_millis()))
    return {"isTokenValid": True, "roleArn": "ROLE_ARN"}

def boom(event, context):
    raise RuntimeError("secret internals")

def garbage(event, context):
    return ["not", "a", "dict"]

def one_arg(event):
    return {"isTokenValid": True, "roleArn": ""}

class Holder:
    @staticmethod
    def nested(event, context):
        return {"isTokenValid": False, "roleArn": ""}

not_callable = 42
""".replace("ROLE_ARN", ROLE)


@pytest.fixture
def authz_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"authz_fixture_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_python_callable_receives_payload_and_lambda_context(authz_module: str) -> None:
    authorizer = PythonCallableAuthorizer(ARN, f"{authz_module}:ok")
    assert authorizer(EVENT) == {"isTokenValid": True, "roleArn": ROLE}
    ((payload, arn, name, remaining),) = sys.modules[authz_module].calls
    assert payload == EVENT.to_payload()
    assert (arn, name) == (ARN, "my-authorizer")
    assert 0 < remaining <= 1000


def test_python_callable_nested_attribute(authz_module: str) -> None:
    assert PythonCallableAuthorizer(ARN, f"{authz_module}:Holder.nested")(EVENT) == {
        "isTokenValid": False,
        "roleArn": "",
    }


def test_python_callable_exceptions_propagate_for_the_service_to_map(authz_module: str) -> None:
    with pytest.raises(RuntimeError, match="secret internals"):
        PythonCallableAuthorizer(ARN, f"{authz_module}:boom")(EVENT)


def test_python_callable_wrong_arity_is_its_failure(authz_module: str) -> None:
    with pytest.raises(TypeError):  # the Lambda signature (event, context) is the contract
        PythonCallableAuthorizer(ARN, f"{authz_module}:one_arg")(EVENT)


def test_python_callable_garbage_answer(authz_module: str) -> None:
    with raises_code("AuthorizerMisconfigurationException"):
        PythonCallableAuthorizer(ARN, f"{authz_module}:garbage")(EVENT)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("openhi_no_such_module_xyz:handler", "cannot be loaded (ModuleNotFoundError)"),
        ("{module}:missing", "cannot be loaded (AttributeError)"),
        ("{module}:not_callable", "is not callable"),
    ],
)
def test_python_callable_that_cannot_be_loaded(authz_module: str, target: str, fragment: str) -> None:
    authorizer = PythonCallableAuthorizer(ARN, target.format(module=authz_module))  # lazy: no error yet
    with raises_code("AuthorizerMisconfigurationException") as info:
        authorizer(EVENT)
    assert fragment in info.value.message
    assert ARN in info.value.message


def test_module_failing_at_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"authz_broken_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("raise RuntimeError('import-time failure')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with raises_code("AuthorizerMisconfigurationException"):
        PythonCallableAuthorizer(ARN, f"{name}:handler")(EVENT)


@pytest.mark.parametrize("target", ["", "module", "module:", ":fn", "a-b:fn", "mod:fn:extra", "mod.:fn"])
def test_python_target_syntax_checked_at_construction(target: str) -> None:
    with pytest.raises(ValidationError):
        PythonCallableAuthorizer(ARN, target)


# -- HTTP --------------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, object]]] = []  # noqa: RUF012 (test-only class state)

    def log_message(self, format: str, *args: object) -> None:  # stdlib signature
        return

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        type(self).received.append((self.path, self.headers.get("Content-Type", ""), payload))
        if self.path == "/ok":
            self._send(200, json.dumps({"isTokenValid": True, "roleArn": ROLE}).encode())
        elif self.path == "/deny":
            self._send(200, json.dumps({"isTokenValid": False, "roleArn": ""}).encode())
        elif self.path == "/error":
            self._send(500, b'{"message": "boom"}')
        elif self.path == "/forbidden":
            self._send(403, b"{}")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/not-json":
            self._send(200, b"<html>hello</html>", "text/html")
        elif self.path == "/big":
            self._send(200, b" " * (MAX_ANSWER_BYTES + 10) + b"{}")
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, json.dumps({"isTokenValid": True, "roleArn": ROLE}).encode())
        else:
            self._send(404, b"{}")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up (the timeout tests)
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_authorizer_posts_the_event_as_json(http_base: str) -> None:
    _Handler.received.clear()
    authorizer = HttpAuthorizer(ARN, f"{http_base}/ok")
    try:
        assert authorizer(EVENT) == {"isTokenValid": True, "roleArn": ROLE}
        assert HttpAuthorizer(ARN, f"{http_base}/deny")(EVENT) == {"isTokenValid": False, "roleArn": ""}
    finally:
        authorizer.close()
    path, content_type, payload = _Handler.received[0]
    assert (path, content_type, payload) == ("/ok", "application/json", EVENT.to_payload())


@pytest.mark.parametrize("path", ["/error", "/forbidden", "/redirect", "/missing"])
def test_http_non_2xx_is_a_failure(http_base: str, path: str) -> None:
    with raises_code("AuthorizerFailureException") as info:
        HttpAuthorizer(ARN, f"{http_base}{path}")(EVENT)
    assert "answered HTTP" in info.value.message


@pytest.mark.parametrize("path", ["/not-json", "/big"])
def test_http_unreadable_answer_is_misconfigured(http_base: str, path: str) -> None:
    with raises_code("AuthorizerMisconfigurationException"):
        HttpAuthorizer(ARN, f"{http_base}{path}")(EVENT)


def test_http_slow_answer_times_out(http_base: str) -> None:
    started = time.monotonic()
    with raises_code("AuthorizerTimeoutException"):
        HttpAuthorizer(ARN, f"{http_base}/slow", timeout_seconds=0.3)(EVENT)
    assert time.monotonic() - started < 1.2


def test_http_connection_refused_is_a_failure() -> None:
    import socket

    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with raises_code("AuthorizerFailureException") as info:
        HttpAuthorizer(ARN, f"http://127.0.0.1:{port}/")(EVENT)
    assert "could not be reached" in info.value.message


# -- the registry ------------------------------------------------------------------------------------------------


def test_registry_from_setting(authz_module: str, http_base: str) -> None:
    other = "arn:aws:lambda:us-east-1:123456789012:function:remote:$LATEST"
    registry = AuthorizerRegistry.from_setting(json.dumps({ARN: f"python:{authz_module}:ok", other: f"{http_base}/ok"}))
    try:
        assert registry.arns == {ARN, other}
        assert isinstance(registry.get(ARN), PythonCallableAuthorizer)
        assert isinstance(registry.get(other), HttpAuthorizer)
        assert registry.get(ARN)(EVENT)["roleArn"] == ROLE
        assert registry.get(other)(EVENT)["roleArn"] == ROLE
    finally:
        registry.close()


def test_empty_setting_is_an_empty_registry() -> None:
    registry = AuthorizerRegistry.from_setting("  ")
    assert registry.arns == frozenset()
    with raises_code("AuthorizerMisconfigurationException") as info:
        registry.get(ARN)
    assert info.value.message == f"Authorizer {ARN} does not exist or is invalid"


def test_unknown_arn_is_misconfigured() -> None:
    registry = AuthorizerRegistry.from_setting(json.dumps({ARN: "https://auth.example.org/x"}))
    with raises_code("AuthorizerMisconfigurationException"):
        registry.get(ARN.replace("my-authorizer", "other"))


def test_registry_does_not_import_at_start() -> None:
    registry = AuthorizerRegistry.from_setting(json.dumps({ARN: "python:openhi_not_installed_abc:handler"}))
    with raises_code("AuthorizerMisconfigurationException"):
        registry.get(ARN)(EVENT)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('"x"', "must be a JSON object"),
        (json.dumps({"my-authorizer": "https://a.example/x"}), "is not a Lambda function ARN"),
        (json.dumps({"arn:aws:iam::123456789012:role/x": "https://a.example/x"}), "is not a Lambda function ARN"),
        (json.dumps({ARN: 3}), "must be a string"),
        (json.dumps({ARN: "ftp://a.example/x"}), "neither"),
        (json.dumps({ARN: "https://"}), "neither"),
        (json.dumps({ARN: "lambda:my-authorizer"}), "neither"),
        (json.dumps({ARN: "python:not a module"}), "package.module:function"),
    ],
)
def test_invalid_settings_fail_at_start(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match="setting 'authorizers'") as info:
        AuthorizerRegistry.from_setting(text)
    assert fragment in info.value.message
    assert info.value.field == "authorizers"
