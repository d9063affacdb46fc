"""Schemathesis in stateful mode: sequences of calls chained by the OpenAPI links (register a
meter → get, approve, suspend it, post its readings; place an order → get, cancel it; register
→ log in → refresh → log out; create an API key → revoke it), at least 5,000 calls, none
answered with a 5xx.

The fuzz account holds every role (admin included) so registrar, operator and admin routes are
exercised too; rate limits are raised (tests/fixtures/fuzz_app.py), so no call is turned
away with 429 before its logic runs. Each scenario starts from the account's full roles again
(the fuzzer may replace its own roles through `PUT /v1/admin/accounts/{id}/roles`).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, reject, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import Bundle
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.generation.stateful.state_machine import StepInput
from schemathesis.specs.openapi.stateful import (
    _step_case_strategy,
    is_root_allowed,
    normalize_name,
    transition,
)
from sqlmodel import Session, select

from backend.accounts.models import Account
from tests.fixtures.fuzz_app import FUZZ_EMAIL, fuzz_headers, fuzzed_app

# A few minutes on a shared 2-core machine: `make test` starts it first on one of its workers.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.fuzz]

ROLES = ["participant", "registrar", "operator", "issuer", "meter_data_provider", "admin"]
MIN_CALLS = 5_000
SCENARIOS = 60  # x up to STEPS calls each
STEPS = 12
MAX_RUNS = 40


# Creators schemathesis does not start scenarios from on its own: its dependency analysis
# reads `device_id`, `meter_id`, `asset_id` in their bodies as references to resources no
# operation produces, and leaves them out, and with them every link that follows them.
EXTRA_ROOTS = ("POST /v1/meters", "POST /v1/trading/orders")


def with_roots(machine, schema, labels):
    """`machine` with a scenario-starting rule for each operation of `labels` (random input),
    built the way schemathesis 4.32 builds its own root rules."""
    operations = {r.ok().label: r.ok() for r in schema.get_all_operations()}
    extra = {}
    for label in labels:
        operation = operations[label]
        name = normalize_name(f"RANDOM -> {label}")
        modes = schema.config.generation_for(operation=operation, phase="stateful").modes
        extra[name] = transition(
            name=name,
            target=Bundle("catch_all"),
            precondition=is_root_allowed(label),
            input=_step_case_strategy(operation, modes, feedback=NO_FEEDBACK).map(
                StepInput.initial
            ),
        )
    return type(
        "WithRoots",
        (machine,),
        {
            **extra,
            "root_rules": machine.root_rules | set(extra),
            "_root_labels": machine._root_labels | set(labels),
        },
    )


@pytest.fixture(scope="module")
def api_app(anvil, tmp_path_factory):
    with fuzzed_app(anvil.rpc_url, tmp_path_factory.mktemp("stateful"), ROLES) as app:
        yield app


def test_linked_sequences_never_answer_5xx(api_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    calls: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    in_app = [0.0]

    class Workflows(with_roots(schema.as_state_machine(), schema, EXTRA_ROOTS)):  # type: ignore[misc]
        def setup(self) -> None:
            with Session(api_app.state.engine) as session:
                account = session.exec(select(Account).where(Account.email == FUZZ_EMAIL)).one()
                if account.roles != ROLES or not account.active:
                    account.roles, account.active = list(ROLES), True
                    session.add(account)
                    session.commit()

        def before_call(self, case):
            # always the fuzz account: generated credentials would only earn a 401
            for name in list(case.headers or {}):
                if name.lower() in ("authorization", "x-api-key"):
                    del case.headers[name]

        def get_call_kwargs(self, case):
            return {"headers": fuzz_headers(case, api_app)}

        def call(self, case, **kwargs):
            started = time.perf_counter()
            try:
                return super().call(case, **kwargs)
            except Exception as exc:  # the app raised: a 500 behind the test transport
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.300}: raised {exc!r:.300}"
                )
                calls[(case.operation.label, 500)] += 1
                reject()  # this scenario cannot go on; the run does
            finally:
                in_app[0] += time.perf_counter() - started

        def validate_response(self, response, case, **kwargs):
            calls[(case.operation.label, response.status_code)] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.300}: "
                    f"{response.status_code} {response.text[:300]}"
                )
            # Recorded, not raised: Hypothesis would replay the scenario against a database
            # that has moved on (and call that flaky); the assertion after the run reports them.

    started = time.monotonic()
    runs = restarts = 0
    while sum(calls.values()) < MIN_CALLS and runs < MAX_RUNS:
        runs += 1
        try:
            Workflows.run(
                settings=settings(
                    max_examples=SCENARIOS,
                    stateful_step_count=STEPS,
                    deadline=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                    database=None,
                )
            )
        except Flaky:
            # The database outlives a scenario, so the same choices can meet other responses
            # (a bundle filled before is empty now) and Hypothesis stops the run; like
            # schemathesis's own runner, start another one. 5xx answers are in `failures`.
            restarts += 1
    elapsed = time.monotonic() - started
    operations = {label for label, _ in calls}
    statuses = Counter(status for _, status in calls.elements())
    print(
        f"stateful: {sum(calls.values())} calls, {len(operations)} operations, "
        f"{elapsed:.1f} s ({in_app[0]:.1f} s in the app), {runs} runs ({restarts} restarted), "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    for label in sorted(operations):
        print(f"  {label}: {sorted((s, n) for (op, s), n in calls.items() if op == label)}")
    assert not failures, "\n".join(failures[:20])
    assert sum(calls.values()) >= MIN_CALLS
    assert statuses[429] == 0  # rate limits do not stop the fuzzer
