"""CreateAcls over SASL_SSL with aiokafka's connection, as a Kafka administrator.

aiokafka's admin client has no ACL call and its CreateAcls structs are v0/v1, which Kafka
4 no longer serves (KIP-896); v2 (the first flexible version, same fields) is declared
here with aiokafka's own protocol types. Only the secured launcher imports this module,
so the package itself keeps to the standard library.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from pearls_localinfra.acl import AclBinding

# Kafka's enum codes (org.apache.kafka.common.resource / acl).
_RESOURCE = {"TOPIC": 2, "GROUP": 3, "CLUSTER": 4}
_PATTERN = {"LITERAL": 3, "PREFIXED": 4}
_OPERATION = {"ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8}
_ALLOW = 3


class _CreateAclsResponseV2(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 2
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _CreateAclsRequestV2(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 2
    RESPONSE_TYPE = _CreateAclsResponseV2
    SCHEMA = Schema(
        (
            "creations",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", CompactString("utf-8")),
                ("resource_pattern_type", Int8),
                ("principal", CompactString("utf-8")),
                ("host", CompactString("utf-8")),
                ("operation", Int8),
                ("permission_type", Int8),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _CreateAcls(Request[_CreateAclsRequestV2]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, creations: list[tuple[Any, ...]]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[_CreateAclsRequestV2]) -> _CreateAclsRequestV2:
        return request_struct_class(self._creations, {})


def _row(rule: AclBinding) -> tuple[Any, ...]:
    return (
        _RESOURCE[rule.resource_type],
        rule.resource_name,
        _PATTERN[rule.pattern_type],
        rule.principal,
        rule.host,
        _OPERATION[rule.operation],
        _ALLOW,
        {},
    )


async def create_acls_async(
    bootstrap_servers: str,
    ssl_context: ssl.SSLContext,
    username: str,
    password: str,
    bindings: Sequence[AclBinding],
) -> None:
    """Create ``bindings`` as ``username`` over SASL_SSL (SCRAM-SHA-512); raise on any error."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="pearls-infra-acl",
        security_protocol="SASL_SSL",
        ssl_context=ssl_context,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=username,
        sasl_plain_password=password,
    )
    await admin.start()
    try:
        node_id = admin._client.get_random_node()
        response = await admin._send_request_to_node(
            node_id, _CreateAcls([_row(rule) for rule in bindings])
        )
    finally:
        await admin.close()
    failed = [
        f"{rule}: error {code} {message}"
        for rule, (code, message, _tags) in zip(bindings, response.results, strict=True)
        if code
    ]
    if failed:
        raise RuntimeError("creating ACLs failed:\n" + "\n".join(failed))


def create_acls(
    bootstrap_servers: str,
    ssl_context: ssl.SSLContext,
    username: str,
    password: str,
    bindings: Sequence[AclBinding],
) -> None:
    """Blocking ``create_acls_async``, in a thread of its own (the caller may run a loop)."""
    coroutine = create_acls_async(bootstrap_servers, ssl_context, username, password, bindings)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()
