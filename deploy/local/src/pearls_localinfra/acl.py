"""Who may do what on Pearls' Kafka: one SCRAM user per service, least privilege.

The layout the local secured broker applies (``KafkaSecurity.for_pearls()``) and the
one an operator creates in production (``kafka_acls_commands`` renders the equivalent
``kafka-acls.sh`` commands; README "Kafka security"):

- each service writes only its own topic and the dead-letter topics of the topics it
  consumes (``<consumed topic>.dlq``: its consumer sends records it cannot take there);
- it reads only the topics it consumes, with its own consumer group;
- it may describe every Pearls topic (prefix ``pearls.``): at start-up each service
  lists the topics to create the missing ones, and a topic it cannot describe looks
  missing. Describe shows a topic's metadata, never its records.

No service gets Create, Delete, Alter or any cluster right: topics are created by an
operator (or the prepare job) with an administrator's credentials. The idempotent
producer needs no ``IdempotentWrite`` on the cluster since Kafka 3.0 (KIP-679): Write on
the topic suffices.

Standard library only, like the rest of the package: the names below are the event
contract's (``pearls_shared.topics``, the services' ``entrypoints/consumers.py``), and
``tests/security`` checks that they still agree.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

APPLICATIONS = "pearls.applications.v1"
MENTORING = "pearls.mentoring.v1"
AWARDS = "pearls.awards.v1"
NOTIFICATIONS = "pearls.notifications.v1"
TOPIC_PREFIX = "pearls."
DEAD_LETTER_SUFFIX = ".dlq"

ResourceType = Literal["TOPIC", "GROUP", "CLUSTER"]
PatternType = Literal["LITERAL", "PREFIXED"]
Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE", "ALL"]


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    """One service's Kafka user, the topic it writes and what it reads with which group."""

    service: str
    user: str
    produces: str
    consumes: tuple[str, ...] = ()
    group: str | None = None
    # PREFIXED: every group whose name starts with `group` (e.g. one per test or deployment).
    group_pattern: PatternType = "LITERAL"

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


PEARLS_SERVICES: tuple[ServiceAccess, ...] = (
    ServiceAccess("applications", "pearls-applications", APPLICATIONS),
    ServiceAccess("mentoring", "pearls-mentoring", MENTORING, (APPLICATIONS,), "mentoring"),
    ServiceAccess("awards", "pearls-awards", AWARDS, (APPLICATIONS, MENTORING), "awards"),
    ServiceAccess(
        "notifications",
        "pearls-notifications",
        NOTIFICATIONS,
        (APPLICATIONS, MENTORING, AWARDS),
        "pearls-notifications",
    ),
)


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ALLOW rule, as Kafka's CreateAcls request and ``kafka-acls.sh`` take it."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    operation: Operation
    pattern_type: PatternType = "LITERAL"
    host: str = "*"


def service_bindings(
    access: ServiceAccess, *, dead_letter_suffix: str = DEAD_LETTER_SUFFIX
) -> list[AclBinding]:
    """The ALLOW rules one service needs, and nothing more."""
    who = access.principal
    rules = [
        AclBinding(who, "TOPIC", TOPIC_PREFIX, "DESCRIBE", "PREFIXED"),
        AclBinding(who, "TOPIC", access.produces, "WRITE"),
    ]
    rules += [AclBinding(who, "TOPIC", t + dead_letter_suffix, "WRITE") for t in access.consumes]
    rules += [AclBinding(who, "TOPIC", t, "READ") for t in access.consumes]
    if access.consumes:
        if access.group is None:
            raise ValueError(f"{access.service} consumes topics but has no consumer group")
        rules.append(AclBinding(who, "GROUP", access.group, "READ", access.group_pattern))
    return rules


def pearls_bindings(
    services: Iterable[ServiceAccess] = PEARLS_SERVICES,
    *,
    dead_letter_suffix: str = DEAD_LETTER_SUFFIX,
) -> list[AclBinding]:
    return [
        rule
        for access in services
        for rule in service_bindings(access, dead_letter_suffix=dead_letter_suffix)
    ]


def with_groups(
    services: Iterable[ServiceAccess],
    groups: Mapping[str, str] | None = None,
    *,
    pattern: PatternType = "LITERAL",
) -> tuple[ServiceAccess, ...]:
    """The same layout with other consumer group names (service -> group) or pattern."""
    groups = groups or {}
    return tuple(
        replace(a, group=groups.get(a.service, a.group), group_pattern=pattern) for a in services
    )


def kafka_acls_commands(
    bindings: Sequence[AclBinding],
    *,
    bootstrap: str = "$KAFKA_BOOTSTRAP",
    command_config: str = "admin.properties",
) -> list[str]:
    """``kafka-acls.sh --add`` commands equivalent to ``bindings``: one per principal,
    operation, resource type and pattern type, listing the resources."""
    grouped: dict[tuple[str, str, str, str, str], list[str]] = {}
    for rule in bindings:
        key = (rule.principal, rule.operation, rule.resource_type, rule.pattern_type, rule.host)
        grouped.setdefault(key, []).append(rule.resource_name)
    commands = []
    for (principal, operation, resource_type, pattern_type, host), names in grouped.items():
        parts = [
            "kafka-acls.sh",
            f"--bootstrap-server {bootstrap}",
            f"--command-config {command_config}",
            "--add",
            f"--allow-principal {shlex.quote(principal)}",
        ]
        if host != "*":
            parts.append(f"--allow-host {host}")
        parts.append(f"--operation {operation.capitalize()}")
        if pattern_type != "LITERAL":
            parts.append(f"--resource-pattern-type {pattern_type.lower()}")
        if resource_type == "CLUSTER":
            parts.append("--cluster")
        else:
            flag = "--topic" if resource_type == "TOPIC" else "--group"
            parts += [f"{flag} {shlex.quote(name)}" for name in names]
        commands.append(" ".join(parts))
    return commands
