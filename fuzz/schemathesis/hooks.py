"""Schemathesis hooks of `./dev fuzz`: one check that keeps schemas/openapi.yaml exact.

A request the schema calls valid may still be refused by a rule no JSON Schema can state (the SKU
must be in the catalog, one line per SKU, a page token the API signed). Each operation lists those
refusals in the spec under `x-business-rules` (status and problem type); any other 4xx answer to a
schema-valid request means the spec or the API is wrong, and fails the run.
"""

import schemathesis

# The refusals that need no rule: authentication, rate limits and a missing resource.
ALWAYS_ALLOWED = {401, 404, 429}


@schemathesis.check
def schema_valid_refused_only_by_a_documented_rule(ctx, response, case):
    """A schema-valid request refused with 400 or 422 names a rule of the operation's `x-business-rules`."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ALWAYS_ALLOWED:
        return None
    rules = case.operation.definition.raw.get("x-business-rules") or []
    try:
        problem_type = response.json().get("type")
    except Exception:  # noqa: BLE001 - a body that is not JSON is its own failure
        problem_type = None
    allowed = {(int(r["status"]), r["type"]) for r in rules}
    if (status, problem_type) not in allowed:
        documented = ", ".join(f"{s} {t}" for s, t in sorted(allowed)) or "none"
        raise AssertionError(
            f"a schema-valid request was refused with {status} {problem_type}, which is not one of "
            f"the operation's x-business-rules ({documented}): fix the spec or the API"
        )
    return None
