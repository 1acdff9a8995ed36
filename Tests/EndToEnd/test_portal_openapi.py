"""The portal's REST API against its own OpenAPI document, with schemathesis:
generated requests (valid and invalid, bounded in number) must never get a
server error, and every answer must match the document (status codes,
content types, response schemas, headers); invalid requests must be refused.

One check is left out on purpose: `positive_data_acceptance` (a request
valid by the schema may still break a rule the schema cannot express: a
topic that is not in Kafka, a path that overlaps another API's).
`unsupported_method` runs: an undeclared method on a known path gets 405
with an `Allow` header."""

import subprocess
import time

from conftest import run_async  # noqa: F401  (the fixtures come from conftest)
from test_portal import Portal

EXAMPLES = 10


def test_the_rest_api_matches_its_openapi_document_under_schemathesis(broker, tmp_path, print_result):
    portal = Portal(tmp_path, broker.bootstrap).start()
    try:
        status, document, _ = portal.call("GET", "/api/v1/openapi.json", token="none")
        assert status == 200 and document["openapi"].startswith("3.")
        started = time.monotonic()
        result = subprocess.run(
            [str(Portal.schemathesis()), "run", f"{portal.url}/api/v1/openapi.json",
             "-H", f"Authorization: Bearer {portal.token}", "-n", str(EXAMPLES), "-w", "1", "--seed", "1",
             "--checks", "all", "--exclude-checks", "positive_data_acceptance",
             # Logging out would end the session the rest of the run uses.
             "--exclude-path", "/api/v1/logout"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its reports stay out of the repository
        took = time.monotonic() - started
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        summary = [line for line in result.stdout.splitlines() if "generated" in line]
        print_result(f"schemathesis: {summary[-1].strip() if summary else result.stdout[-200:]} in {took:.0f} s")
    finally:
        portal.stop()
