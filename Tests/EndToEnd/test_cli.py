"""`streamgate check-config` (and `serve` with a bad file) as a user runs them."""

from __future__ import annotations

import copy
import json
import re
import subprocess

import pytest

from conftest import STREAMGATE_BIN, base_config, subprocess_env

VALID = base_config(8080, "127.0.0.1:9092", ["scores", "news.v2"])


def run_cli(*args, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(STREAMGATE_BIN), *args], capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env())


def write(tmp_path, document, name="config.json"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def edited(edit):
    config = copy.deepcopy(VALID)
    edit(config)
    return config


def test_valid_file_is_accepted(tmp_path):
    path = write(tmp_path, VALID)
    result = run_cli("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: configuration is valid"
    assert result.stderr == ""


def test_minimal_file_is_accepted(tmp_path):
    path = write(tmp_path, {"source": {"plugin": "kafka", "options": {"brokers": "127.0.0.1:9092",
                                                                       "topics": ["scores"]}}})
    result = run_cli("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def _set(path, value):
    def edit(config):
        *parents, last = path
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _delete(*path):
    def edit(config):
        *parents, last = path
        node = config
        for key in parents:
            node = node[key]
        del node[last]
    return edit


BAD = [
    pytest.param(_set(["bogus"], 1), "bogus", "1", id="unknown-top-level-key"),
    pytest.param(_set(["listen", "hots"], "x"), "listen.hots", '"x"', id="unknown-nested-key"),
    pytest.param(_set(["websocket", "max_mesage_bytes"], 1), "websocket.max_mesage_bytes", "1", id="typo-key"),
    pytest.param(_set(["source", "options", "extra"], True), "source.options.extra", "true",
                 id="unknown-plugin-option"),
    pytest.param(_set(["listen", "port"], 70000), "listen.port", "70000", id="port-too-big"),
    pytest.param(_set(["listen", "port"], -1), "listen.port", "-1", id="port-negative"),
    pytest.param(_set(["listen", "port"], "8080"), "listen.port", '"8080"', id="port-string"),
    pytest.param(_set(["listen", "port"], 80.5), "listen.port", None, id="port-fraction"),
    pytest.param(_delete("source"), "source", None, id="missing-source"),
    pytest.param(_set(["source", "plugin"], "kafkaa"), "source.plugin", '"kafkaa"', id="unknown-source-plugin"),
    pytest.param(_set(["mapping", "plugin"], "nope"), "mapping.plugin", '"nope"', id="unknown-mapping-plugin"),
    pytest.param(_set(["authorization", "plugin"], "deny-some"), "authorization.plugin", '"deny-some"',
                 id="unknown-authorization-plugin"),
    pytest.param(_delete("source", "options", "brokers"), "source.options.brokers", None, id="missing-brokers"),
    pytest.param(_set(["source", "options", "topics"], []), "source.options.topics", "[]", id="no-topics"),
    pytest.param(_set(["source", "options", "topics"], ["bad topic"]), "source.options.topics[0]",
                 '"bad topic"', id="invalid-topic-name"),
    pytest.param(_set(["source", "options", "properties"], {"no.such.property": "1"}),
                 "source.options.properties.no.such.property", '"1"', id="unknown-librdkafka-property"),
    # The gateway stops at an offset out of range and decides itself (docs/recovery.md).
    pytest.param(_set(["source", "options", "properties"], {"auto.offset.reset": "latest"}),
                 "source.options.properties.auto.offset.reset", '"latest"', id="auto-offset-reset"),
    pytest.param(_set(["tracing"], {"export": {"endpoint": "http://127.0.0.1:4318/v1/traces"}}),
                 "tracing.export.endpoint", '"http://127.0.0.1:4318/v1/traces"', id="span-export-without-propagation"),
    pytest.param(_set(["tracing"], {"propagate": True, "export": {"endpoint": "127.0.0.1:4318"}}),
                 "tracing.export.endpoint", '"127.0.0.1:4318"', id="span-export-endpoint-without-scheme"),
    pytest.param(_set(["tracing"], {"export": {"protocol": "grpc"}}), "tracing.export.protocol", '"grpc"',
                 id="span-export-protocol"),
    pytest.param(_set(["websocket", "max_message_bytes"], 10), "websocket.max_message_bytes", "10",
                 id="max-message-too-small"),
    pytest.param(_set(["websocket", "path"], "ws"), "websocket.path", '"ws"', id="path-without-slash"),
    pytest.param(_set(["echo", "path"], "/ws"), "echo.path", '"/ws"', id="echo-path-clash"),
    pytest.param(_set(["log_level"], "loud"), "log_level", '"loud"', id="bad-log-level"),
    pytest.param(_set(["event_loops"], 1000), "event_loops", "1000", id="too-many-loops"),
]


UNKNOWN_KEYS = {"bogus", "listen.hots", "websocket.max_mesage_bytes", "source.options.extra"}


@pytest.mark.parametrize("edit,key,value", BAD)
def test_bad_file_is_rejected_naming_the_key(tmp_path, edit, key, value):
    path = write(tmp_path, edited(edit))
    result = run_cli("check-config", str(path))
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"error: {path}: {key}: "
    assert lines[0].startswith(prefix), f"expected {prefix!r}…, got {lines[0]!r}"
    rest = lines[0][len(prefix):]
    if key in UNKNOWN_KEYS:
        assert rest.startswith(f"unknown key, got {value}; known keys: "), rest
    elif value is not None:
        assert rest.startswith(f"got {value}, expected "), rest
    else:
        assert re.match(r"(got .+|missing), expected .+", rest), rest


@pytest.mark.parametrize("document", ['{"listen": {"port": 8080,}', "", "[]", "not json at all", '{"a": 1} x'],
                         ids=["trailing-comma", "empty", "array", "garbage", "trailing-garbage"])
def test_invalid_json_is_rejected(tmp_path, document):
    path = write(tmp_path, document)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith(f"error: {path}: "), result.stderr
    assert result.stdout == ""


def test_invalid_json_message(tmp_path):
    path = write(tmp_path, '{"listen": {"port": 8080,}')
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: not valid JSON: line 1, column 26: expected another member"), result.stderr


def test_json_errors_point_at_the_line_and_column(tmp_path):
    """Also where Foundation's decoder is lenient (a trailing comma in an array)."""
    document = json.dumps(VALID, indent=2).replace('"scores",', '"scores",,', 1)
    line = next(i for i, text in enumerate(document.splitlines(), 1) if '"scores",,' in text)
    column = document.splitlines()[line - 1].index(",,") + 2
    path = write(tmp_path, document)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert f"not valid JSON: line {line}, column {column}: expected a value" in result.stderr, result.stderr


def test_missing_file_is_rejected(tmp_path):
    path = tmp_path / "absent.json"
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: "), result.stderr


def test_serve_refuses_a_bad_file(tmp_path):
    path = write(tmp_path, edited(_set(["listen", "port"], 70000)))
    result = run_cli("serve", "--config", str(path), timeout=15)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert f"error: {path}: listen.port: got 70000" in result.stderr


def test_check_config_of_a_portal_follower_neither_asks_the_portal_nor_writes_its_state(tmp_path):
    """Checking a file is not serving it: the portal plugins check their
    options only (the portal here is a closed port, and would not be asked)."""
    (tmp_path / "cluster.secret").write_text("s3cret\n")
    state = tmp_path / "portal-state.json"
    follow = {"url": "http://127.0.0.1:9", "credential_file": str(tmp_path / "cluster.secret"),
              "state_file": str(state)}
    config = edited(lambda c: c.update({"mapping": {"plugin": "portal", "options": dict(follow)},
                                        "authorization": {"plugin": "portal", "options": dict(follow)}}))
    result = run_cli("check-config", str(write(tmp_path, config)))
    assert result.returncode == 0, result.stderr
    assert "portal" not in result.stderr, result.stderr  # no "unreachable" or "no state" line
    assert not state.exists()

    config["authorization"]["options"]["poll_seconds"] = 0.01
    result = run_cli("check-config", str(write(tmp_path, config)))
    assert result.returncode == 2 and "authorization.options.poll_seconds" in result.stderr, result.stderr


def _strip_comments(text: str) -> str:
    """`//` comments outside strings blanked, as the gateway does."""
    out, in_string, i = [], False, 0
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                out.append(" ")
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _sections(value, path=""):
    """Every object of the document with its key path (array items as [0])."""
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            yield from _sections(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _sections(child, f"{path}[{i}]")


def test_config_example_is_complete_accepted_and_documented(tmp_path):
    """The example check-config accepts holds every key the code reads (each
    section's known keys, as the code lists them, are the example's), and
    docs/configuration.md names every one of them."""
    from conftest import ROOT as REPO_ROOT

    result = run_cli("config-example")
    assert result.returncode == 0, result.stderr
    example = result.stdout
    assert example == (REPO_ROOT / "docs" / "streamgate.example.jsonc").read_text()
    assert "//" in example, "the example explains itself"
    path = write(tmp_path, example, "example.jsonc")
    checked = run_cli("check-config", str(path))
    assert checked.returncode == 0, checked.stderr

    document = json.loads(_strip_comments(example))
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    for section_path, section in _sections(document):
        # The code's own list of this section's keys, from its refusal of one more.
        probe = json.loads(_strip_comments(example))
        target = probe
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", section_path):
            target = target[int(part[1:-1])] if part.startswith("[") else target[part]
        if section_path.endswith(("properties", ".options", ".headers")) and not section:
            continue  # open maps (librdkafka properties, export headers) and plugins without options
        if section_path.endswith("properties"):
            continue
        target["not_a_key"] = 1
        refused = run_cli("check-config", str(write(tmp_path, json.dumps(probe), "probe.json")))
        assert refused.returncode == 2, (section_path, refused.stdout)
        known = re.search(r"known keys: (.*)$", refused.stderr.strip())
        assert known, (section_path, refused.stderr)
        assert sorted(known[1].split(", ")) == sorted(section), \
            f"{section_path or '(top level)'}: the code knows {known[1]}; the example has {sorted(section)}"
        for key, value in section.items():
            if isinstance(value, dict) or key in ("plugin", "options"):
                continue  # a section (its keys are checked) or the {"plugin", "options"} form
            full = f"{section_path}.{key}" if section_path else key
            in_options = ".options" in section_path or "[" in section_path
            assert f"`{full}`" in doc or (in_options and (f"`{key}`" in doc or f'"{key}"' in doc)), \
                f"docs/configuration.md does not name `{full}`"


def test_comments_are_allowed_outside_strings_only(tmp_path):
    config = json.dumps(VALID, indent=2).replace('"127.0.0.1:9092",', '"127.0.0.1:9092", // the broker, "a//b"', 1)
    assert check_ok(tmp_path, "// a whole-line comment\n" + config)
    broken = config.replace('"listen": {', '"listen": { // open\n  ,', 1)
    result = run_cli("check-config", str(write(tmp_path, broken)))
    assert result.returncode == 2 and "not valid JSON: line 3" in result.stderr, result.stderr


def check_ok(tmp_path, text: str) -> bool:
    result = run_cli("check-config", str(write(tmp_path, text)))
    assert result.returncode == 0, result.stderr
    return True


def test_check_config_reports_every_problem_it_finds(tmp_path):
    """Each problem names its key; after one, the key's default applies and
    the check goes on, plugins' options included (keys may hold dots)."""
    config = edited(lambda c: (
        c["listen"].update({"port": 70000, "hots": "x"}),
        c["websocket"].update({"path": "nope"}),
        c["limits"] if "limits" in c else c.update({"limits": {"allowed_origins": ["https://ok.example", ""]}}),
        c["source"]["options"].update({"topics": ["scores", "b c"], "start": "middle",
                                       "properties": {"fetch.wait.max.ms": "abc"}})))
    path = write(tmp_path, config)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    keys = [re.match(rf"error: {re.escape(str(path))}: ([^:]+):", line)[1] for line in lines[:-1]]
    assert keys == ["listen.port", "listen.hots", "websocket.path", "limits.allowed_origins[1]",
                    "source.options.topics[1]", "source.options.start",
                    "source.options.properties.fetch.wait.max.ms"], result.stderr
    assert lines[-1] == "7 problems"


def test_a_missing_required_key_is_reported_once(tmp_path):
    config = edited(lambda c: (c.pop("source"), c["listen"].update({"port": -1})))
    result = run_cli("check-config", str(write(tmp_path, config)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3 and "listen.port" in lines[0] and "source" in lines[1] and lines[2] == "2 problems", lines
