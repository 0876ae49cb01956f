"""Evaluating identity and trust policies as IAM does (explicit deny > allow > default deny, conditions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from openhi.iam.evaluate import (
    AccessRequest,
    Decision,
    TrustRequest,
    action_matches,
    arn_matches,
    conditions_hold,
    evaluate,
    glob_pattern,
    normalize_context,
    resource_matches,
    statement_applies,
    trusts,
)
from openhi.iam.policy import PolicyDocument

ACCOUNT = "123456789012"
DATASTORE = f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/abc123"
IMAGE_SET = f"{DATASTORE}/imageset/def456"
STUDY_KEY = "medical-imaging:StudyInstanceUID"
SERIES_KEY = "medical-imaging:SeriesInstanceUID"


def policy(*statements: dict[str, Any]) -> PolicyDocument:
    return PolicyDocument.parse({"Version": "2012-10-17", "Statement": list(statements)})


def allow(
    action: str | list[str] = "medical-imaging:*", resource: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(
    action: str | list[str] = "medical-imaging:*", resource: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(
    policies: Sequence[PolicyDocument],
    action: str,
    resource: str = DATASTORE,
    context: Mapping[str, Sequence[str]] | None = None,
) -> Decision:
    return evaluate(policies, AccessRequest(action, resource, context or {}))


# --- the decision ---------------------------------------------------------------------------------------------------


def test_default_deny_without_policies_or_matching_statement() -> None:
    assert decide([], "medical-imaging:GetDatastore") is Decision.IMPLICIT_DENY
    assert decide([policy(allow("s3:GetObject"))], "medical-imaging:GetDatastore") is Decision.IMPLICIT_DENY


def test_allow() -> None:
    assert decide([policy(allow("medical-imaging:GetDatastore"))], "medical-imaging:GetDatastore") is Decision.ALLOW


def test_explicit_deny_wins_over_allow_in_any_order_and_document() -> None:
    allowing, denying = policy(allow()), policy(deny("medical-imaging:DeleteDatastore"))
    for policies in ([allowing, denying], [denying, allowing], [policy(allow(), deny("medical-imaging:Delete*"))]):
        assert decide(policies, "medical-imaging:DeleteDatastore") is Decision.EXPLICIT_DENY
        assert decide(policies, "medical-imaging:GetDatastore") is Decision.ALLOW


def test_deny_alone_is_explicit() -> None:
    assert decide([policy(deny())], "medical-imaging:GetDatastore") is Decision.EXPLICIT_DENY


def test_policies_may_be_any_iterable() -> None:
    assert evaluate(iter([policy(allow())]), AccessRequest("medical-imaging:GetImageSet", IMAGE_SET)) is Decision.ALLOW


# --- actions ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("medical-imaging:Get*", "medical-imaging:GetImageFrame", True),
        ("medical-imaging:Get*", "medical-imaging:ListImageSetVersions", False),
        ("medical-imaging:Get*", "medical-imaging:Get", True),
        ("medical-imaging:*", "medical-imaging:DeleteDatastore", True),
        ("medical-imaging:*", "s3:GetObject", False),
        ("*", "s3:GetObject", True),
        ("medical-imaging:GetImageSet", "MEDICAL-IMAGING:getimageset", True),
        ("Medical-Imaging:get*", "medical-imaging:GetImageSetMetadata", True),
        ("medical-imaging:GetImageSe?", "medical-imaging:GetImageSet", True),
        ("medical-imaging:GetImageSe?", "medical-imaging:GetImageSetMetadata", False),
        ("medical-imaging:GetImageSet", "medical-imaging:GetImageSetMetadata", False),
        ("medical-imaging:*Frame", "medical-imaging:GetImageFrame", True),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected
    assert (decide([policy(allow(pattern))], action) is Decision.ALLOW) is expected


def test_regex_metacharacters_are_literal() -> None:
    assert not action_matches("s3:Get.bject", "s3:GetObject")
    assert action_matches("s3:Get.bject", "s3:Get.bject")
    assert not resource_matches("arn:aws:s3:::a+b", "arn:aws:s3:::aab")
    assert resource_matches("arn:aws:s3:::(a)[b]", "arn:aws:s3:::(a)[b]")


def test_not_action_inverts() -> None:
    policies = [policy({"Effect": "Allow", "NotAction": "medical-imaging:Delete*", "Resource": "*"})]
    assert decide(policies, "medical-imaging:GetImageSet") is Decision.ALLOW
    assert decide(policies, "medical-imaging:DeleteImageSet") is Decision.IMPLICIT_DENY
    denying = [policy(allow(), {"Effect": "Deny", "NotAction": "medical-imaging:Get*", "Resource": "*"})]
    assert decide(denying, "medical-imaging:GetImageSet") is Decision.ALLOW
    assert decide(denying, "medical-imaging:CopyImageSet") is Decision.EXPLICIT_DENY


# --- resources --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/abc*", DATASTORE, True),
        (f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/abc*", IMAGE_SET, True),  # * crosses "/"
        (f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/xyz*", DATASTORE, False),
        (f"arn:aws:medical-imaging:*:{ACCOUNT}:datastore/*", DATASTORE, True),
        ("arn:aws:medical-imaging:*", IMAGE_SET, True),  # * crosses ":"
        (f"{DATASTORE}/imageset/*", IMAGE_SET, True),
        (f"{DATASTORE}/imageset/*", DATASTORE, False),
        (DATASTORE, DATASTORE, True),
        (DATASTORE.replace("abc123", "ABC123"), DATASTORE, False),  # resources are case-sensitive
        (f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/abc12?", DATASTORE, True),
        (f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/abc1?", DATASTORE, False),
        ("*", IMAGE_SET, True),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(pattern, resource) is expected
    assert (decide([policy(allow(resource=pattern))], "medical-imaging:GetImageSet", resource) is Decision.ALLOW) is (
        expected
    )


def test_not_resource_inverts() -> None:
    policies = [policy(allow(), {"Effect": "Deny", "Action": "*", "NotResource": f"{DATASTORE}*"})]
    assert decide(policies, "medical-imaging:GetImageSet", IMAGE_SET) is Decision.ALLOW
    other = f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/other"
    assert decide(policies, "medical-imaging:GetImageSet", other) is Decision.EXPLICIT_DENY


def test_statement_without_resource_covers_any_resource() -> None:
    statement = policy({"Effect": "Deny", "Action": "*"}).statements[0]
    assert statement_applies(statement, AccessRequest("medical-imaging:GetImageSet", IMAGE_SET))


def test_glob_pattern_is_cached_and_anchored() -> None:
    assert glob_pattern("a*b") is glob_pattern("a*b")
    assert glob_pattern("a*b").fullmatch("a\nb") is not None
    assert not resource_matches("abc", "xabcx")


# --- the guide's condition examples (21740-21870) -----------------------------------------------------------------


def guide_policy(action: str, key: str, operator: str, value: str | list[str]) -> list[PolicyDocument]:
    resource = f"arn:aws:medical-imaging:us-west-2:{ACCOUNT}:datastore/your-datastore-id"
    return [
        policy(
            {
                "Sid": "Statement1",
                "Effect": "Allow",
                "Action": [action],
                "Resource": [resource],
                "Condition": {operator: {key: value}},
            }
        )
    ]


GUIDE_DATASTORE = f"arn:aws:medical-imaging:us-west-2:{ACCOUNT}:datastore/your-datastore-id"


def test_guide_example_study_instance_uid_string_equals() -> None:
    policies = guide_policy("medical-imaging:SearchDICOMSeries", STUDY_KEY, "StringEquals", "1.2.840.1")
    action = "medical-imaging:SearchDICOMSeries"
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["1.2.840.1"]}) is Decision.ALLOW
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["1.2.840.2"]}) is Decision.IMPLICIT_DENY
    assert decide(policies, action, GUIDE_DATASTORE, {}) is Decision.IMPLICIT_DENY  # key missing
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY.lower(): ["1.2.840.1"]}) is Decision.ALLOW
    assert decide(policies, "medical-imaging:SearchDICOMStudies", GUIDE_DATASTORE, {STUDY_KEY: ["1.2.840.1"]}) is (
        Decision.IMPLICIT_DENY
    )
    assert decide(policies, action, DATASTORE, {STUDY_KEY: ["1.2.840.1"]}) is Decision.IMPLICIT_DENY


def test_guide_example_study_instance_uid_wildcard() -> None:
    policies = guide_policy("medical-imaging:SearchDICOMSeries", STUDY_KEY, "StringLike", "123.456.789*")
    action = "medical-imaging:SearchDICOMSeries"
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["123.456.789"]}) is Decision.ALLOW
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["123.456.789.1.2"]}) is Decision.ALLOW
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["123.456.78"]}) is Decision.IMPLICIT_DENY
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["9.123.456.789"]}) is Decision.IMPLICIT_DENY
    # "." is a literal dot, not "any character"
    assert decide(policies, action, GUIDE_DATASTORE, {STUDY_KEY: ["123x456.789"]}) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize("key", [STUDY_KEY, SERIES_KEY])
def test_guide_example_multiple_values_are_alternatives(key: str) -> None:
    action = "medical-imaging:SearchDICOMInstances"
    policies = guide_policy(action, key, "StringEquals", ["123.456.789", "1.2.3.4.5.6"])
    assert decide(policies, action, GUIDE_DATASTORE, {key: ["123.456.789"]}) is Decision.ALLOW
    assert decide(policies, action, GUIDE_DATASTORE, {key: ["1.2.3.4.5.6"]}) is Decision.ALLOW
    assert decide(policies, action, GUIDE_DATASTORE, {key: ["1.2.3"]}) is Decision.IMPLICIT_DENY


def test_keys_and_operators_are_all_required() -> None:
    clauses = (
        policy(
            allow(
                Condition={
                    "StringEquals": {STUDY_KEY: "1.2", SERIES_KEY: "1.2.3"},
                    "StringLike": {"aws:SourceArn": "arn:aws:*"},
                }
            )
        )
        .statements[0]
        .conditions
    )
    full = {STUDY_KEY: ["1.2"], SERIES_KEY: ["1.2.3"], "aws:SourceArn": ["arn:aws:x"]}
    assert conditions_hold(clauses, full)
    for missing in full:
        assert not conditions_hold(clauses, {k: v for k, v in full.items() if k != missing})
    assert not conditions_hold(clauses, {**full, SERIES_KEY: ["9"]})


# --- condition operators --------------------------------------------------------------------------------------------


def holds(operator: str, value: str | list[str] | bool, context: Mapping[str, Sequence[str]]) -> bool:
    clauses = policy(allow(Condition={operator: {"test:Key": value}})).statements[0].conditions
    return conditions_hold(clauses, context)


@pytest.mark.parametrize(
    ("operator", "value", "context", "expected"),
    [
        # positive operators: false when the key is missing
        ("StringEquals", "a", {}, False),
        ("StringLike", "*", {}, False),
        ("ArnLike", "*", {}, False),
        ("Bool", "true", {}, False),
        # negated operators: true when the key is missing
        ("StringNotEquals", "a", {}, True),
        ("StringNotEqualsIgnoreCase", "a", {}, True),
        ("StringNotLike", "a*", {}, True),
        ("ArnNotEquals", "arn:aws:s3:::b", {}, True),
        ("ArnNotLike", "arn:aws:s3:::*", {}, True),
        # negated operators on a present key
        ("StringNotEquals", "a", {"test:key": ["a"]}, False),
        ("StringNotEquals", ["a", "b"], {"test:key": ["c"]}, True),
        ("StringNotEquals", ["a", "b"], {"test:key": ["b"]}, False),
        ("StringNotLike", "a*", {"test:key": ["ab"]}, False),
        ("StringNotLike", "a*", {"test:key": ["ba"]}, True),
        # case
        ("StringEquals", "Abc", {"test:key": ["abc"]}, False),
        ("StringEqualsIgnoreCase", "Abc", {"test:key": ["aBC"]}, True),
        ("StringNotEqualsIgnoreCase", "Abc", {"test:key": ["aBC"]}, False),
        ("StringLike", "A?c", {"test:key": ["abc"]}, False),
        ("StringEquals", "a*", {"test:key": ["abc"]}, False),  # no wildcards in StringEquals
        ("StringEquals", "a*", {"test:key": ["a*"]}, True),
        # context keys are case-insensitive
        ("StringEquals", "v", {"TEST:KEY": ["v"]}, True),
        # IfExists: true when missing, else the operator
        ("StringEqualsIfExists", "a", {}, True),
        ("StringEqualsIfExists", "a", {"test:key": ["a"]}, True),
        ("StringEqualsIfExists", "a", {"test:key": ["b"]}, False),
        ("StringNotLikeIfExists", "a*", {"test:key": ["ab"]}, False),
        ("ArnLikeIfExists", "arn:aws:s3:::*", {"test:key": ["arn:aws:s3:::b"]}, True),
        # Null
        ("Null", "true", {}, True),
        ("Null", "true", {"test:key": ["x"]}, False),
        ("Null", "false", {"test:key": ["x"]}, True),
        ("Null", "false", {}, False),
        ("Null", True, {"test:key": []}, True),  # a key without values is absent
        ("Null", "maybe", {}, False),
        # Bool
        ("Bool", True, {"test:key": ["true"]}, True),
        ("Bool", "true", {"test:key": ["True"]}, True),
        ("Bool", False, {"test:key": ["true"]}, False),
        # Arn*: compared part by part
        ("ArnEquals", "arn:aws:medical-imaging:*:123456789012:datastore/*", {"test:key": [DATASTORE]}, True),
        ("ArnLike", "arn:aws:medical-imaging:us-west-2:*:*", {"test:key": [DATASTORE]}, False),
        ("ArnLike", "arn:aws:*:us-east-1:*:*", {"test:key": [DATASTORE]}, True),
        ("ArnNotLike", "arn:aws:*:us-east-1:*:*", {"test:key": [DATASTORE]}, False),
        # ForAnyValue: one context value must satisfy; missing -> false
        ("ForAnyValue:StringEquals", ["a", "b"], {"test:key": ["x", "b"]}, True),
        ("ForAnyValue:StringEquals", ["a", "b"], {"test:key": ["x", "y"]}, False),
        ("ForAnyValue:StringEquals", ["a"], {}, False),
        ("ForAnyValue:StringNotEquals", ["a"], {"test:key": ["a", "z"]}, True),
        ("ForAnyValue:StringNotEquals", ["a"], {"test:key": ["a"]}, False),
        ("ForAnyValue:StringEqualsIfExists", ["a"], {}, True),
        # ForAllValues: every context value must satisfy; missing or empty -> true
        ("ForAllValues:StringEquals", ["a", "b"], {"test:key": ["a", "b"]}, True),
        ("ForAllValues:StringEquals", ["a", "b"], {"test:key": ["a", "c"]}, False),
        ("ForAllValues:StringEquals", ["a"], {}, True),
        ("ForAllValues:StringEquals", ["a"], {"test:key": []}, True),
        ("ForAllValues:StringLike", ["1.2.*"], {"test:key": ["1.2.3", "1.2.4"]}, True),
        ("ForAllValues:StringNotEquals", ["a"], {"test:key": ["b", "c"]}, True),
        ("ForAllValues:StringNotEquals", ["a"], {"test:key": ["b", "a"]}, False),
        # without a qualifier, a multi-valued key: positive = some value matches, negated = none does
        ("StringEquals", "a", {"test:key": ["x", "a"]}, True),
        ("StringNotEquals", "a", {"test:key": ["x", "a"]}, False),
        ("StringNotEquals", "a", {"test:key": ["x", "y"]}, True),
    ],
)
def test_condition_operators(
    operator: str, value: str | list[str] | bool, context: Mapping[str, Sequence[str]], expected: bool
) -> None:
    assert holds(operator, value, context) is expected


def test_a_bare_string_context_value_is_one_value() -> None:
    assert normalize_context({"A:B": "xyz", "a:b": ["q"], "c:d": []}) == {"a:b": ("xyz", "q")}
    assert holds("StringEquals", "xyz", {"test:key": "xyz"})


def test_arn_matches_falls_back_to_a_whole_glob_for_short_patterns() -> None:
    assert arn_matches("*", DATASTORE)
    assert arn_matches("arn:aws:medical-imaging:*", DATASTORE)
    assert not arn_matches("arn:aws:s3:*", DATASTORE)


def test_conditioned_deny_applies_only_when_its_condition_holds() -> None:
    policies = [policy(allow(), deny(Condition={"StringNotLike": {STUDY_KEY: "1.2.*"}}))]
    assert decide(policies, "medical-imaging:GetImageSet", IMAGE_SET, {STUDY_KEY: ["1.2.3"]}) is Decision.ALLOW
    assert decide(policies, "medical-imaging:GetImageSet", IMAGE_SET, {STUDY_KEY: ["9.9"]}) is (Decision.EXPLICIT_DENY)
    # the key missing makes the negated operator true: denied
    assert decide(policies, "medical-imaging:GetImageSet", IMAGE_SET) is Decision.EXPLICIT_DENY


# --- trust policies -----------------------------------------------------------------------------------------------


OIDC_TRUST = PolicyDocument.parse(
    """
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "OIDCRoleFederation",
      "Effect": "Allow",
      "Principal": {
        "Service": "medical-imaging.amazonaws.com"
      },
      "Action": "sts:AssumeRole"
    }
  ]
}
"""
)


def test_guide_oidc_trust_lets_the_service_assume_the_role() -> None:
    assert trusts(OIDC_TRUST, TrustRequest(service="medical-imaging.amazonaws.com"))
    assert not trusts(OIDC_TRUST, TrustRequest(service="lambda.amazonaws.com"))
    assert not trusts(OIDC_TRUST, TrustRequest(principal_arns=(f"arn:aws:iam::{ACCOUNT}:root",)))
    assert not trusts(OIDC_TRUST, TrustRequest(service="medical-imaging.amazonaws.com", action="sts:TagSession"))
    assert not trusts(OIDC_TRUST, TrustRequest())


def trust_policy(principal: Any, **extra: Any) -> PolicyDocument:
    return policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra})


def test_aws_principal_by_arn() -> None:
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    trust = trust_policy({"AWS": alice})
    assert trusts(trust, TrustRequest(principal_arns=(alice,)))
    assert trusts(trust, TrustRequest(principal_arns=(f"arn:aws:iam::{ACCOUNT}:root", alice)))
    assert not trusts(trust, TrustRequest(principal_arns=(f"arn:aws:iam::{ACCOUNT}:user/bob",)))
    assert not trusts(trust, TrustRequest(service="medical-imaging.amazonaws.com"))


def test_aws_principal_by_account_id_means_the_account_root() -> None:
    trust = trust_policy({"AWS": ACCOUNT})
    assert trusts(trust, TrustRequest(principal_arns=(f"arn:aws:iam::{ACCOUNT}:root",)))
    assert not trusts(trust, TrustRequest(principal_arns=(f"arn:aws:iam::{ACCOUNT}:user/alice",)))
    assert not trusts(trust, TrustRequest(principal_arns=("arn:aws:iam::111122223333:root",)))


def test_aws_principal_glob_and_session_arns_are_strings() -> None:
    trust = trust_policy({"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/*"})
    assert trusts(trust, TrustRequest(principal_arns=(f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/session-1",)))
    assert not trusts(trust, TrustRequest(principal_arns=(f"arn:aws:sts::{ACCOUNT}:assumed-role/Writer/s",)))


def test_star_principals() -> None:
    anyone = trust_policy("*")
    assert trusts(anyone, TrustRequest(principal_arns=(f"arn:aws:iam::{ACCOUNT}:user/alice",)))
    assert trusts(anyone, TrustRequest(service="medical-imaging.amazonaws.com"))
    any_aws = trust_policy({"AWS": "*"})
    assert trusts(any_aws, TrustRequest(principal_arns=("arn:aws:iam::111122223333:user/x",)))
    assert not trusts(any_aws, TrustRequest(service="medical-imaging.amazonaws.com"))


def test_trust_deny_wins_and_not_principal() -> None:
    alice, bob = f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:user/bob"
    trust = policy(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": alice}, "Action": "sts:*"},
    )
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert trusts(trust, TrustRequest(principal_arns=(alice, root)))
    assert not trusts(trust, TrustRequest(principal_arns=(bob, root)))


def test_trust_conditions_see_an_empty_context_unless_given() -> None:
    source_arn = f"arn:aws:medical-imaging:us-west-2:{ACCOUNT}:datastore/*"
    trust = trust_policy(
        {"Service": "medical-imaging.amazonaws.com"},
        Condition={"ArnLike": {"aws:SourceArn": source_arn}, "StringEquals": {"aws:SourceAccount": ACCOUNT}},
    )
    service = "medical-imaging.amazonaws.com"
    assert not trusts(trust, TrustRequest(service=service))
    context = {
        "aws:SourceArn": [f"arn:aws:medical-imaging:us-west-2:{ACCOUNT}:datastore/abc"],
        "aws:SourceAccount": [ACCOUNT],
    }
    assert trusts(trust, TrustRequest(service=service, context=context))
    assert not trusts(trust, TrustRequest(service=service, context={**context, "aws:SourceAccount": ["1"]}))
    assert trusts(trust_policy("*", Condition={"Null": {"sts:ExternalId": "true"}}), TrustRequest(service=service))


def test_trust_statement_without_principal_never_applies() -> None:
    assert not trusts(policy(allow("sts:AssumeRole")), TrustRequest(principal_arns=("arn:aws:iam::1:root",)))
