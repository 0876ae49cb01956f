"""Properties of policy evaluation, checked against a small independent reference model.

The reference model below reads the raw JSON of the generated policies (not the parsed dataclasses), matches
globs with a dynamic-programming table (no regular expressions) and evaluates every statement naively. Besides
agreeing with it, ``evaluate`` must be monotone (a Deny never grants, an Allow never denies), ignore the order and
grouping of statements, and survive a ``to_json`` round trip; negated operators must be the exact complements of
the positive ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openhi.iam.evaluate import AccessRequest, Decision, conditions_hold, evaluate
from openhi.iam.policy import PolicyDocument

EXAMPLES = settings(max_examples=300, deadline=None)

type Json = dict[str, Any]
type Context = dict[str, list[str]]

# --- the reference model -----------------------------------------------------------------------------------------


def ref_glob(pattern: str, text: str, fold: bool = False) -> bool:
    """``*`` any run, ``?`` one character: the classic table, matches[i][j] = pattern[i:] matches text[j:]."""
    if fold:
        pattern, text = pattern.lower(), text.lower()
    n, m = len(pattern), len(text)
    matches = [[False] * (m + 1) for _ in range(n + 1)]
    matches[n][m] = True
    for i in range(n - 1, -1, -1):
        for j in range(m, -1, -1):
            char = pattern[i]
            if char == "*":
                matches[i][j] = matches[i + 1][j] or (j < m and matches[i][j + 1])
            elif j < m and (char == "?" or char == text[j]):
                matches[i][j] = matches[i + 1][j + 1]
    return matches[0][0]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def ref_condition(operator: str, key: str, values: list[str], context: Context) -> bool:
    found = [value for name, given_values in context.items() if name.lower() == key.lower() for value in given_values]
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    base = name.removesuffix("IfExists")
    negated = base == "StringNotEquals"

    def per_value(value: str) -> bool:
        if base == "StringLike":
            return any(ref_glob(condition, value) for condition in values)
        equal = value in values
        return not equal if negated else equal

    if not found:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated
    if qualifier == "ForAllValues" or (not qualifier and negated):
        return all(per_value(value) for value in found)
    return any(per_value(value) for value in found)


def ref_statement(statement: Json, action: str, resource: str, context: Context) -> bool:
    if "Action" in statement:
        action_ok = any(ref_glob(p, action, fold=True) for p in as_list(statement["Action"]))
    else:
        action_ok = not any(ref_glob(p, action, fold=True) for p in as_list(statement["NotAction"]))
    if "Resource" in statement:
        resource_ok = any(ref_glob(p, resource) for p in as_list(statement["Resource"]))
    else:
        resource_ok = not any(ref_glob(p, resource) for p in as_list(statement["NotResource"]))
    conditions_ok = all(
        ref_condition(operator, key, as_list(values), context)
        for operator, body in statement.get("Condition", {}).items()
        for key, values in body.items()
    )
    return action_ok and resource_ok and conditions_ok


def ref_decide(documents: Sequence[Json], action: str, resource: str, context: Context) -> Decision:
    effects = {
        statement["Effect"]
        for document in documents
        for statement in document["Statement"]
        if ref_statement(statement, action, resource, context)
    }
    if "Deny" in effects:
        return Decision.EXPLICIT_DENY
    return Decision.ALLOW if "Allow" in effects else Decision.IMPLICIT_DENY


# --- strategies --------------------------------------------------------------------------------------------------


def one_or_list(element: st.SearchStrategy[str]) -> st.SearchStrategy[str | list[str]]:
    return st.one_of(element, st.lists(element, min_size=1, max_size=3))


SERVICES = st.sampled_from(["x", "X", "y"])
action_patterns = st.one_of(
    st.just("*"), st.builds(lambda s, n: f"{s}:{n}", SERVICES, st.text("aAb*?", min_size=1, max_size=3))
)
actions = st.builds(lambda s, n: f"{s}:{n}", SERVICES, st.text("abAB", max_size=3))
resource_patterns = st.one_of(st.just("*"), st.builds(lambda t: f"arn:{t}", st.text("ab:/*?", max_size=4)))
resources = st.builds(lambda t: f"arn:{t}", st.text("ab:/", max_size=4))
OPERATORS = [
    "StringEquals",
    "StringLike",
    "StringNotEquals",
    "StringEqualsIfExists",
    "StringNotEqualsIfExists",
    "StringLikeIfExists",
    "ForAnyValue:StringEquals",
    "ForAnyValue:StringNotEquals",
    "ForAllValues:StringLike",
    "ForAllValues:StringNotEquals",
]
condition_values = one_or_list(st.text("ab*?", max_size=2))
condition_bodies = st.fixed_dictionaries({}, optional={"k:one": condition_values, "K:Two": condition_values}).filter(
    bool
)
conditions = st.dictionaries(st.sampled_from(OPERATORS), condition_bodies, max_size=2)
contexts = st.dictionaries(
    st.sampled_from(["k:one", "K:ONE", "k:two", "k:Two", "k:three"]),
    st.lists(st.text("ab", max_size=2), max_size=2),
    max_size=3,
)


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> Json:
    statement: Json = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    statement[draw(st.sampled_from(["Action", "NotAction"]))] = draw(one_or_list(action_patterns))
    statement[draw(st.sampled_from(["Resource", "NotResource"]))] = draw(one_or_list(resource_patterns))
    condition = draw(conditions)
    if condition:
        statement["Condition"] = condition
    return statement


documents = st.builds(
    lambda items: {"Version": "2012-10-17", "Statement": items}, st.lists(statements(), min_size=1, max_size=3)
)
requests = st.tuples(actions, resources, contexts)


def decide(raw: Sequence[Json], request: tuple[str, str, Context]) -> Decision:
    action, resource, context = request
    return evaluate([PolicyDocument.parse(document) for document in raw], AccessRequest(action, resource, context))


# --- properties ----------------------------------------------------------------------------------------------------


def test_reference_glob_sanity() -> None:
    assert ref_glob("a*b?", "axxbc")
    assert not ref_glob("a*b?", "axxb")
    assert ref_glob("*", "")
    assert ref_glob("A?", "ab", fold=True)
    assert not ref_glob("A?", "ab")


@EXAMPLES
@given(st.lists(documents, max_size=2), requests)
def test_evaluate_agrees_with_the_reference_model(raw: list[Json], request: tuple[str, str, Context]) -> None:
    assert decide(raw, request) is ref_decide(raw, *request)


@EXAMPLES
@given(st.lists(documents, max_size=2), statements(effect="Deny"), requests)
def test_adding_a_deny_never_grants(raw: list[Json], denial: Json, request: tuple[str, str, Context]) -> None:
    before = decide(raw, request)
    after = decide([*raw, {"Statement": denial}], request)
    assert after in (before, Decision.EXPLICIT_DENY)
    if before is not Decision.ALLOW:
        assert after is not Decision.ALLOW
    if before is Decision.EXPLICIT_DENY:
        assert after is Decision.EXPLICIT_DENY


@EXAMPLES
@given(st.lists(documents, max_size=2), statements(effect="Allow"), requests)
def test_adding_an_allow_never_denies(raw: list[Json], grant: Json, request: tuple[str, str, Context]) -> None:
    before = decide(raw, request)
    after = decide([*raw, {"Statement": grant}], request)
    if before is Decision.IMPLICIT_DENY:
        assert after in (Decision.IMPLICIT_DENY, Decision.ALLOW)
    else:
        assert after is before


@EXAMPLES
@given(st.lists(documents, min_size=1, max_size=3), requests)
def test_order_and_grouping_of_statements_do_not_matter(raw: list[Json], request: tuple[str, str, Context]) -> None:
    merged = {"Statement": [statement for document in raw for statement in document["Statement"]]}
    reversed_statements = {"Statement": list(reversed(merged["Statement"]))}
    expected = decide(raw, request)
    assert decide(list(reversed(raw)), request) is expected
    assert decide([merged], request) is expected
    assert decide([reversed_statements], request) is expected


@EXAMPLES
@given(documents, requests)
def test_to_json_round_trips(raw: Json, request: tuple[str, str, Context]) -> None:
    document = PolicyDocument.parse(raw)
    text = document.to_json()
    again = PolicyDocument.parse(text)
    assert again == document
    assert again.to_json() == text
    action, resource, context = request
    access = AccessRequest(action, resource, context)
    assert evaluate([again], access) is evaluate([document], access)


@EXAMPLES
@given(one_or_list(action_patterns), actions)
def test_not_action_is_the_complement_of_action(patterns: str | list[str], action: str) -> None:
    def allows(element: str) -> bool:
        document = {"Statement": {"Effect": "Allow", element: patterns, "Resource": "*"}}
        return decide([document], (action, "arn:r", {})) is Decision.ALLOW

    assert allows("Action") != allows("NotAction")


def holds(operator: str, values: str | list[str], context: Context) -> bool:
    document = PolicyDocument.parse(
        {"Statement": {"Effect": "Allow", "Action": "*", "Condition": {operator: {"k:one": values}}}}
    )
    return conditions_hold(document.statements[0].conditions, context)


@EXAMPLES
@given(condition_values, contexts)
def test_negated_operators_are_complements(values: str | list[str], context: Context) -> None:
    assert holds("StringNotEquals", values, context) is not holds("StringEquals", values, context)
    assert holds("StringNotLike", values, context) is not holds("StringLike", values, context)
    assert holds("ForAllValues:StringNotEquals", values, context) is not holds(
        "ForAnyValue:StringEquals", values, context
    )
    assert holds("ForAllValues:StringNotLike", values, context) is not holds("ForAnyValue:StringLike", values, context)


@EXAMPLES
@given(condition_values, contexts)
def test_if_exists_holds_when_absent_else_as_the_operator(values: str | list[str], context: Context) -> None:
    absent = not any(key.lower() == "k:one" and given_values for key, given_values in context.items())
    assert holds("Null", "true", context) is absent
    for operator in ("StringEquals", "StringNotEquals", "StringLike", "ForAnyValue:StringLike"):
        assert holds(f"{operator}IfExists", values, context) is (absent or holds(operator, values, context))


def context_values(context: Mapping[str, Sequence[str]]) -> list[str]:
    return [value for key, values in context.items() if key.lower() == "k:one" for value in values]


@EXAMPLES
@given(condition_values, contexts)
def test_set_qualifiers_against_their_definition(values: str | list[str], context: Context) -> None:
    found, wanted = context_values(context), as_list(values)
    assert holds("ForAnyValue:StringEquals", values, context) is any(value in wanted for value in found)
    assert holds("ForAllValues:StringEquals", values, context) is all(value in wanted for value in found)
