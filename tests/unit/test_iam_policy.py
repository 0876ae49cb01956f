"""Parsing IAM policy documents: the forms IAM accepts and a precise PolicyError for everything else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openhi.errors import ValidationError
from openhi.iam.policy import (
    ConditionClause,
    Effect,
    PolicyDocument,
    PolicyError,
    Principals,
    Statement,
    parse_identity_policy,
    parse_operator,
    parse_trust_policy,
)

DATASTORE = "arn:aws:medical-imaging:us-west-2:123456789012:datastore/your-datastore-id"


def allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "medical-imaging:GetImageSet", "Resource": "*", **extra}


def doc(*statements: Any, **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


def error_of(source: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        PolicyDocument.parse(source)
    return caught.value.message


# --- accepted forms ----------------------------------------------------------------------------------------------


def test_guide_study_condition_example_parses() -> None:
    text = json.dumps(
        doc(
            {
                "Sid": "Statement1",
                "Effect": "Allow",
                "Action": ["medical-imaging:SearchDICOMSeries"],
                "Resource": [DATASTORE],
                "Condition": {"StringEquals": {"medical-imaging:StudyInstanceUID": ["123.456.789", "1.2.3.4.5.6"]}},
            }
        ),
        indent=2,
    )
    policy = PolicyDocument.parse(text)
    assert policy == PolicyDocument(
        version="2012-10-17",
        statements=(
            Statement(
                sid="Statement1",
                effect=Effect.ALLOW,
                actions=("medical-imaging:SearchDICOMSeries",),
                resources=(DATASTORE,),
                conditions=(
                    ConditionClause("StringEquals", "medical-imaging:studyinstanceuid", ("123.456.789", "1.2.3.4.5.6")),
                ),
            ),
        ),
    )


def test_single_statement_object_and_missing_version() -> None:
    policy = PolicyDocument.parse({"Statement": allow()})
    assert policy.version == "2008-10-17"
    assert len(policy.statements) == 1
    assert policy.statements[0].actions == ("medical-imaging:GetImageSet",)
    assert policy.statements[0].resources == ("*",)
    assert policy.statements[0].conditions == ()
    assert policy.statements[0].sid is None


def test_not_action_not_resource_and_id() -> None:
    policy = PolicyDocument.parse(
        doc({"Effect": "Deny", "NotAction": ["medical-imaging:Get*"], "NotResource": DATASTORE}, Id="P1")
    )
    statement = policy.statements[0]
    assert policy.policy_id == "P1"
    assert statement.effect is Effect.DENY
    assert statement.actions is None
    assert statement.not_actions == ("medical-imaging:Get*",)
    assert statement.resources is None
    assert statement.not_resources == (DATASTORE,)


def test_principals_star_account_id_arn_and_service() -> None:
    policy = PolicyDocument.parse(
        doc(
            {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {
                "Effect": "Allow",
                "Principal": {
                    "AWS": ["111122223333", "arn:aws:iam::123456789012:user/alice", "*"],
                    "Service": "medical-imaging.amazonaws.com",
                },
                "Action": "sts:AssumeRole",
            },
            {"Effect": "Deny", "NotPrincipal": {"AWS": "444455556666"}, "Action": "sts:AssumeRole"},
        )
    )
    first, second, third = policy.statements
    assert first.principals == Principals(any=True)
    assert second.principals == Principals(
        aws=("arn:aws:iam::111122223333:root", "arn:aws:iam::123456789012:user/alice", "*"),
        service=("medical-imaging.amazonaws.com",),
    )
    assert third.not_principals == Principals(aws=("arn:aws:iam::444455556666:root",))


def test_condition_operators_qualifiers_and_scalar_values() -> None:
    policy = PolicyDocument.parse(
        doc(
            allow(
                Condition={
                    "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a*", "b?"]},
                    "Bool": {"aws:SecureTransport": True},
                    "Null": {"aws:TokenIssueTime": False},
                    "StringEquals": {"aws:MultiFactorAuthAge": 300, "aws:Ratio": 1.5},
                    "ForAllValues:ArnNotLike": {"aws:SourceArn": "arn:aws:*"},
                }
            )
        )
    )
    assert policy.statements[0].conditions == (
        ConditionClause("StringLike", "aws:tagkeys", ("a*", "b?"), True, "ForAnyValue"),
        ConditionClause("Bool", "aws:securetransport", ("true",)),
        ConditionClause("Null", "aws:tokenissuetime", ("false",)),
        ConditionClause("StringEquals", "aws:multifactorauthage", ("300",)),
        ConditionClause("StringEquals", "aws:ratio", ("1.5",)),
        ConditionClause("ArnNotLike", "aws:sourcearn", ("arn:aws:*",), False, "ForAllValues"),
    )


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("StringEquals", ("StringEquals", False, None)),
        ("StringNotEqualsIgnoreCaseIfExists", ("StringNotEqualsIgnoreCase", True, None)),
        ("ForAllValues:ArnLike", ("ArnLike", False, "ForAllValues")),
        ("ForAnyValue:BoolIfExists", ("Bool", True, "ForAnyValue")),
        ("Null", ("Null", False, None)),
        ("NullIfExists", None),
        ("ForAnyValue:Null", None),
        ("NumericEquals", None),
        ("stringequals", None),
        ("ForSomeValues:StringEquals", None),
        ("IfExists", None),
    ],
)
def test_parse_operator(name: str, parsed: tuple[str, bool, str | None] | None) -> None:
    assert parse_operator(name) == parsed


def test_empty_sid_is_accepted_as_the_console_writes_it() -> None:
    policy = PolicyDocument.parse(doc(allow(Sid=""), allow(Sid="")))
    assert [s.sid for s in policy.statements] == ["", ""]


# --- round trip --------------------------------------------------------------------------------------------------


def test_to_json_is_canonical_and_parses_back_equal() -> None:
    source = {
        "Id": "x",
        "Statement": {
            "Sid": "A1",
            "Effect": "Deny",
            "Principal": {"AWS": "123456789012", "Service": ["medical-imaging.amazonaws.com"]},
            "NotAction": "s3:*",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEqualsIfExists": {"Aws:SourceAccount": ["1", True]}},
        },
    }
    policy = PolicyDocument.parse(source)
    text = policy.to_json()
    assert json.loads(text) == {
        "Version": "2008-10-17",
        "Id": "x",
        "Statement": [
            {
                "Sid": "A1",
                "Effect": "Deny",
                "Principal": {
                    "AWS": ["arn:aws:iam::123456789012:root"],
                    "Service": ["medical-imaging.amazonaws.com"],
                },
                "NotAction": ["s3:*"],
                "Resource": ["*"],
                "Condition": {"ForAnyValue:StringEqualsIfExists": {"aws:sourceaccount": ["1", "true"]}},
            }
        ],
    }
    assert PolicyDocument.parse(text) == policy
    assert PolicyDocument.parse(text).to_json() == text


def test_to_json_of_principal_star() -> None:
    policy = PolicyDocument.parse(doc({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}))
    assert json.loads(policy.to_json())["Statement"][0]["Principal"] == "*"
    assert PolicyDocument.parse(policy.to_json()) == policy


# --- errors ------------------------------------------------------------------------------------------------------


def test_policy_error_is_a_validation_error_with_the_iam_code() -> None:
    assert issubclass(PolicyError, ValidationError)
    assert PolicyError.code == "MalformedPolicyDocumentException"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{",
            "Policy document is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        ('{"Statement": NaN}', "Policy document is not valid JSON: NaN is not a JSON number"),
        ('{"Statement": [], "Statement": []}', "Policy document repeats the key 'Statement' in one JSON object"),
        ("[]", "Policy document must be a JSON object, got an array"),
        ('"x"', "Policy document must be a JSON object, got a string"),
    ],
)
def test_json_errors(source: str, message: str) -> None:
    assert error_of(source) == message


def test_not_text_nor_mapping() -> None:
    assert error_of(42) == "Policy document must be JSON text or an object, got int"


def test_mapping_that_is_not_json() -> None:
    assert error_of({"Statement": {1, 2}}).startswith("Policy document is not JSON: ")


def test_size_limit_counts_characters_without_white_space() -> None:
    actions = [f"medical-imaging:Action{i:05d}" for i in range(330)]
    small = json.dumps(doc(allow(Action=actions)), indent=8)
    assert len(small) > 10_240  # white space makes it long, but does not count
    PolicyDocument.parse(small)
    big = doc(allow(Action=[*actions, *(f"medical-imaging:More{i:05d}" for i in range(30))]))
    text = json.dumps(big, separators=(",", ":"))
    assert error_of(text) == f"Policy document has {len(text)} characters (white space not counted); the limit is 10240"
    assert error_of(big).startswith("Policy document has ")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"Statement": allow(), "Foo": 1},
            'Policy document has an unknown element "Foo" (allowed: Version, Id, Statement)',
        ),
        (
            {"Version": "2012-10-18", "Statement": allow()},
            'Version must be "2012-10-17" or "2008-10-17", got "2012-10-18"',
        ),
        ({"Version": 2012, "Statement": allow()}, 'Version must be "2012-10-17" or "2008-10-17", got 2012'),
        ({"Id": 3, "Statement": allow()}, "Id must be a string, got a number"),
        ({"Version": "2012-10-17"}, "Policy document has no Statement"),
        (doc(), "Statement must not be an empty list"),
        ({"Statement": "x"}, "Statement must be an object or a list of objects, got a string"),
        (doc("x"), "Statement[0] must be an object, got a string"),
        (
            doc(allow(), allow(Actions="x")),
            'Statement[1] has an unknown element "Actions" (allowed: Sid, Effect, Principal, NotPrincipal, Action, '
            "NotAction, Resource, NotResource, Condition)",
        ),
        (doc(allow(Sid=1)), "Statement[0].Sid must be a string, got a number"),
        (doc(allow(Sid="my sid")), "Statement[0].Sid 'my sid' may contain only letters and digits"),
        (doc(allow(Sid="A"), allow(Sid="A")), "Sid 'A' is used by more than one statement"),
        (doc({"Action": "s3:*", "Resource": "*"}), "Statement[0] has no Effect"),
        (doc(allow(Effect="allow")), 'Statement[0].Effect must be "Allow" or "Deny", got "allow"'),
        (doc(allow(Effect=None)), 'Statement[0].Effect must be "Allow" or "Deny", got null'),
        (doc({"Effect": "Allow", "Resource": "*"}), "Statement[0] has neither Action nor NotAction"),
        (doc(allow(NotAction="s3:*")), "Statement[0] has both Action and NotAction; use one"),
        (doc(allow(NotResource="*")), "Statement[0] has both Resource and NotResource; use one"),
        (
            doc(allow(Principal="*", NotPrincipal="*")),
            "Statement[0] has both Principal and NotPrincipal; use one",
        ),
        (doc(allow(Action=[])), "Statement[0].Action must not be an empty list"),
        (doc(allow(Action=7)), "Statement[0].Action must be a string or a list of strings, got a number"),
        (doc(allow(Action=["s3:*", None])), "Statement[0].Action[1] must be a string, got null"),
        (
            doc(allow(Action="GetImageSet")),
            'Statement[0].Action \'GetImageSet\' must be "*" or "service:action" (letters, digits, "-", "*", "?")',
        ),
        (
            doc(allow(Action="medical imaging:Get")),
            'Statement[0].Action \'medical imaging:Get\' must be "*" or "service:action" (letters, digits, "-", '
            '"*", "?")',
        ),
        (doc(allow(Resource="datastore/x")), "Statement[0].Resource 'datastore/x' must be \"*\" or an ARN"),
        (doc(allow(Resource={"a": 1})), "Statement[0].Resource must be a string or a list of strings, got an object"),
        (
            doc(allow(Principal="someone")),
            'Statement[0].Principal must be "*" or an object with AWS and/or Service, got "someone"',
        ),
        (doc(allow(Principal={})), "Statement[0].Principal names no principal"),
        (
            doc(allow(Principal={"Federated": "cognito-identity.amazonaws.com"})),
            'Statement[0].Principal type "Federated" is not supported (supported: AWS, Service)',
        ),
        (
            doc(allow(NotPrincipal={"AWS": "12345"})),
            "Statement[0].NotPrincipal.AWS '12345' must be \"*\", a 12-digit account id or an ARN",
        ),
        (doc(allow(Principal={"AWS": []})), "Statement[0].Principal.AWS must not be an empty list"),
        (doc(allow(Principal={"Service": ""})), "Statement[0].Principal.Service '' is not a service principal name"),
        (doc(allow(Condition=[])), "Statement[0].Condition must be an object, got an array"),
        (
            doc(allow(Condition={"NumericLessThan": {"aws:x": "1"}})),
            'Statement[0].Condition has an unknown operator "NumericLessThan"',
        ),
        (
            doc(allow(Condition={"ForOneValue:StringEquals": {"aws:x": "1"}})),
            'Statement[0].Condition has an unknown operator "ForOneValue:StringEquals"',
        ),
        (
            doc(allow(Condition={"StringEquals": "aws:x"})),
            "Statement[0].Condition.StringEquals must be an object of condition keys, got a string",
        ),
        (
            doc(allow(Condition={"StringEquals": {}})),
            "Statement[0].Condition.StringEquals has no condition key",
        ),
        (
            doc(allow(Condition={"StringEquals": {"nokey": "1"}})),
            'Statement[0].Condition.StringEquals key "nokey" must be "service:key"',
        ),
        (
            doc(allow(Condition={"StringEquals": {"aws:X": "1", "AWS:x": "2"}})),
            "Statement[0].Condition.StringEquals names the key 'AWS:x' twice (keys are case-insensitive)",
        ),
        (
            doc(allow(Condition={"StringLike": {"aws:x": []}})),
            "Statement[0].Condition.StringLike.aws:x must not be an empty list",
        ),
        (
            doc(allow(Condition={"StringLike": {"aws:x": [None]}})),
            "Statement[0].Condition.StringLike.aws:x values must be strings, booleans or numbers, got null",
        ),
        (
            doc(allow(Condition={"StringLike": {"aws:x": {"a": "b"}}})),
            "Statement[0].Condition.StringLike.aws:x values must be strings, booleans or numbers, got an object",
        ),
    ],
)
def test_malformed_documents(source: dict[str, Any], message: str) -> None:
    assert error_of(source) == message
    assert error_of(json.dumps(source)) == message


def test_error_names_the_field() -> None:
    with pytest.raises(PolicyError) as caught:
        PolicyDocument.parse(doc(allow(), allow(Effect="Maybe")))
    assert caught.value.field == "Statement[1].Effect"


# --- identity and trust policies -------------------------------------------------------------------------------------


def test_identity_policy_refuses_principal_and_missing_resource() -> None:
    assert parse_identity_policy(doc(allow())).statements[0].resources == ("*",)
    with pytest.raises(PolicyError, match=r"Statement\[0\]: an identity policy must not specify a Principal"):
        parse_identity_policy(doc(allow(Principal="*")))
    with pytest.raises(PolicyError, match=r"Statement\[1\]: an identity policy statement needs Resource"):
        parse_identity_policy(doc(allow(), {"Effect": "Allow", "Action": "s3:*"}))


def test_trust_policy_needs_principal_and_refuses_resource() -> None:
    trust = {"Effect": "Allow", "Principal": {"Service": "medical-imaging.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert parse_trust_policy(doc(trust)).statements[0].principals is not None
    with pytest.raises(PolicyError, match=r"Statement\[0\]: a trust policy statement needs Principal"):
        parse_trust_policy(doc({"Effect": "Allow", "Action": "sts:AssumeRole"}))
    with pytest.raises(PolicyError, match=r"Statement\[0\]: a trust policy must not specify a Resource"):
        parse_trust_policy(doc({**trust, "Resource": "*"}))
