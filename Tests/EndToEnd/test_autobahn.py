"""RFC 6455 conformance of the echo endpoint, with kosoku (an Autobahn
fuzzingclient implementation). Sections 12 and 13 (permessage-deflate) are
excluded: the gateway does not negotiate compression.

Takes a minute or more; deselect with `-m "not autobahn"`.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict

import pytest

from conftest import KOSOKU_BIN

BAD_BEHAVIORS = {"FAILED", "UNIMPLEMENTED"}
EXPECTED_CASES_1_TO_10 = 301
AUTOBAHN_SECTIONS = {"1", "2", "3", "4", "5", "6", "7", "9", "10"}
KOSOKU_TIMEOUT_S = 540


def _case_key(case_id: str):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


@pytest.mark.autobahn
def test_autobahn_echo_conformance(gateway_factory, create_topic, tmp_path, print_result):
    assert KOSOKU_BIN.exists(), f"kosoku not found at {KOSOKU_BIN}"
    gw = gateway_factory([create_topic(partitions=1)], {"echo": {"enabled": True, "path": "/echo"}})
    outdir = tmp_path / "autobahn"
    log_path = tmp_path / "kosoku.log"
    with open(log_path, "wb") as log:
        try:
            result = subprocess.run(
                [str(KOSOKU_BIN), "-p", "4", "-x", "12.*", "-x", "13.*", "-o", str(outdir), gw.echo_url],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=KOSOKU_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"kosoku did not finish within {KOSOKU_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")
    index_path = outdir / "index.json"
    assert index_path.exists(), f"kosoku exited {result.returncode} without {index_path}:\n" \
                                f"{log_path.read_text()[-3000:]}"
    index = json.loads(index_path.read_text())
    assert len(index) == 1, f"expected one agent in the report, got {list(index)}"
    [(agent, cases)] = index.items()

    behaviors = Counter(case["behavior"] for case in cases.values())
    close_behaviors = Counter(case["behaviorClose"] for case in cases.values())
    per_section = defaultdict(Counter)
    for case_id, case in cases.items():
        per_section[case_id.split(".")[0]][case["behavior"]] += 1

    print_result(f"\nautobahn ({agent}): {len(cases)} cases; behavior: "
          + ", ".join(f"{b}={n}" for b, n in sorted(behaviors.items()))
          + "; behaviorClose: " + ", ".join(f"{b}={n}" for b, n in sorted(close_behaviors.items())))
    for section in sorted(per_section, key=int):
        counts = per_section[section]
        print_result(f"  section {section:>2}: {sum(counts.values()):>3} cases: "
              + ", ".join(f"{b}={n}" for b, n in sorted(counts.items())))

    bad = sorted(
        ((case_id, case["behavior"], case["behaviorClose"]) for case_id, case in cases.items()
         if case["behavior"] in BAD_BEHAVIORS or case["behaviorClose"] in BAD_BEHAVIORS),
        key=lambda row: _case_key(row[0]))
    assert not bad, f"{len(bad)} cases failed: {bad[:40]}"

    # The Autobahn suite numbers its sections 1-7, 9 and 10 (there is no 8).
    sections = {case_id.split(".")[0] for case_id in cases}
    assert AUTOBAHN_SECTIONS <= sections, f"sections run: {sorted(sections, key=int)}"
    assert not sections & {"12", "13"}, "compression sections were not excluded"
    in_scope = [c for c in cases if 1 <= int(c.split(".")[0]) <= 10]
    assert len(in_scope) == EXPECTED_CASES_1_TO_10, f"{len(in_scope)} cases in sections 1-10"
    assert gw.proc.poll() is None, "the gateway died during the conformance run"
