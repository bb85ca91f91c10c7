"""``pearls``: one command line for operators.

Exit codes: 0 done (or all is well), 1 the command found a problem (a check
failed, nothing matched, a replay was refused), 2 the broker or a database is
unreachable, settings are invalid, or the command line is wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import click
import typer
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from pearls_ops import database, dlq
from pearls_ops import kafka as kafka_ops
from pearls_ops import rebuild as rebuild_ops
from pearls_ops.errors import OK, PROBLEM, UNREACHABLE, OpsError
from pearls_ops.masking import masked
from pearls_ops.services import SERVICES, kafka_settings, service, settings_items
from pearls_shared.settings import KafkaSettings

T = TypeVar("T")

app = typer.Typer(
    help="Operate a Pearls deployment: topics, migrations, lag, dead letters, rebuilds,"
    " settings, demo. Settings come from the same environment variables as the services"
    " (KAFKA_*, PEARLS_<SERVICE>_*, PEARLS_DELIVERY_*).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(
    help="The Pearls topics and their dead-letter topics.", no_args_is_help=True
)
dlq_app = typer.Typer(
    help="Dead letters: list, show, export, replay to the original topic.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")

ServiceName = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]


def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures become one line and an exit code."""
    try:
        return asyncio.run(coro)
    except OpsError as exc:
        err().print(f"[red]error:[/red] {exc.message}", soft_wrap=True)
        raise typer.Exit(exc.code) from None
    except KafkaConnectionError as exc:
        servers = kafka_settings().bootstrap_servers
        err().print(
            f"[red]error:[/red] Kafka broker unreachable at {servers}: {exc}", soft_wrap=True
        )
        raise typer.Exit(UNREACHABLE) from None
    except KafkaError as exc:
        servers = kafka_settings().bootstrap_servers
        err().print(f"[red]error:[/red] Kafka at {servers}: {exc!r}", soft_wrap=True)
        raise typer.Exit(UNREACHABLE) from None
    except asyncpg.PostgresError as exc:
        err().print(f"[red]error:[/red] database: {exc}", soft_wrap=True)
        raise typer.Exit(PROBLEM) from None


# -- topics ------------------------------------------------------------------------------


def _topics_table(settings: KafkaSettings, outcome: str) -> Table:
    table = Table(title=f"Topics on {settings.bootstrap_servers}")
    for col in ("topic", "partitions", "replicas", "min.insync", "retention.ms", outcome):
        table.add_column(col)
    return table


@topics_app.command("check")
def topics_check() -> None:
    """Report missing or misconfigured topics; exit 1 if any."""
    settings = kafka_settings()
    states = _run(kafka_ops.topic_states(settings))
    table = _topics_table(settings, "state")
    bad = 0
    for state in states:
        problems = state.problems()
        bad += bool(problems)
        table.add_row(
            state.spec.name,
            _str(state.partitions),
            _str(state.replication_factor),
            _str(state.min_insync_replicas),
            _str(state.retention_ms),
            "[red]" + "; ".join(problems) + "[/red]" if problems else "[green]ok[/green]",
        )
    out().print(table)
    if bad:
        err().print(
            f"{bad} topic(s) missing or misconfigured (`pearls topics create` adds missing ones)"
        )
        raise typer.Exit(PROBLEM)


@topics_app.command("create")
def topics_create() -> None:
    """Create the missing topics (partitions, replication, min.insync, retention from KAFKA_*)."""
    settings = kafka_settings()
    results = _run(kafka_ops.create_topics(settings))
    table = _topics_table(settings, "result")
    for spec, created in results:
        table.add_row(
            spec.name,
            str(spec.partitions),
            str(spec.replication_factor),
            str(spec.min_insync_replicas),
            _str(spec.retention_ms),
            "[green]created[/green]" if created else "exists",
        )
    out().print(table)
    # Existing topics are left alone: report the ones that differ from the settings.
    misconfigured = [s for s in _run(kafka_ops.topic_states(settings)) if s.problems()]
    for state in misconfigured:
        err().print(f"[yellow]warning:[/yellow] {state.spec.name}: {'; '.join(state.problems())}")
    if misconfigured:
        raise typer.Exit(PROBLEM)


# -- migrations ----------------------------------------------------------------------------


@app.command()
def migrate(
    service_names: Annotated[
        list[str] | None, typer.Option("--service", "-s", help="A service (repeatable).")
    ] = None,
    all_services: Annotated[bool, typer.Option("--all", help="Every service.")] = False,
) -> None:
    """Apply each service's migrations (shared outbox/inbox and its own) to its own database."""
    if bool(service_names) == all_services:
        err().print("error: give --service NAME (repeatable) or --all")
        raise typer.Exit(UNREACHABLE)
    chosen = list(SERVICES.values()) if all_services else [service(n) for n in service_names or []]

    async def run() -> list[tuple[str, list[str]]]:
        return [(s.name, await database.migrate(s)) for s in chosen]

    table = Table(title="Migrations")
    table.add_column("service")
    table.add_column("applied now")
    for name, applied in _run(run()):
        table.add_row(name, "\n".join(applied) if applied else "up to date")
    out().print(table)


# -- status --------------------------------------------------------------------------------


@app.command()
def status(
    service_names: Annotated[
        list[str] | None, typer.Option("--service", "-s", help="Only this service (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False,
) -> None:
    """Outbox backlog per service and consumer lag per group/topic/partition.

    Exit 2 if the broker or any service's database is unreachable."""
    chosen = [service(n) for n in service_names] if service_names else list(SERVICES.values())
    settings = kafka_settings()
    report: dict[str, Any] = {"outbox": [], "lag": []}
    unreachable: list[str] = []

    async def run() -> None:
        for svc in chosen:
            try:
                backlog = await database.outbox_backlog(svc)
            except OpsError as exc:
                unreachable.append(exc.message)
                report["outbox"].append({"service": svc.name, "error": exc.message})
            else:
                report["outbox"].append(
                    {
                        "service": svc.name,
                        "unsent": backlog.unsent,
                        "failing": backlog.failing,
                        "oldest": backlog.oldest.isoformat() if backlog.oldest else None,
                        "oldest_age_s": backlog.age_s,
                    }
                )
        for svc in chosen:
            group = svc.consumer_group()
            if group is None:
                continue
            for lag in await kafka_ops.group_lag(settings, group, svc.consumes):
                report["lag"].append(
                    {
                        "service": svc.name,
                        "group": lag.group,
                        "topic": lag.partition.topic,
                        "partition": lag.partition.partition,
                        "committed": lag.committed,
                        "end": lag.end,
                        "lag": lag.lag,
                    }
                )

    _run(run())
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        console = out()
        table = Table(title="Outbox backlog")
        for col in ("service", "unsent", "failing", "oldest unsent", "age"):
            table.add_column(col)
        for row in report["outbox"]:
            if "error" in row:
                table.add_row(row["service"], "[red]unreachable[/red]", "", "", "")
                continue
            table.add_row(
                row["service"],
                str(row["unsent"]),
                str(row["failing"]),
                row["oldest"] or "-",
                _age(row["oldest_age_s"]),
            )
        console.print(table)
        table = Table(title=f"Consumer lag on {settings.bootstrap_servers}")
        for col in ("service", "group", "topic", "partition", "committed", "end", "lag"):
            table.add_column(col)
        for row in report["lag"]:
            table.add_row(
                row["service"],
                row["group"],
                row["topic"],
                str(row["partition"]),
                _str(row["committed"]),
                str(row["end"]),
                str(row["lag"]),
            )
        console.print(table)
    for message in unreachable:
        err().print(f"[red]error:[/red] {message}", soft_wrap=True)
    if unreachable:
        raise typer.Exit(UNREACHABLE)


app.command("lag", help="The same as `pearls status`.")(status)


# -- dead letters ----------------------------------------------------------------------------

TopicOption = Annotated[
    str | None,
    typer.Option(
        "--topic", "-t", help="A dead-letter topic, or its original topic (default: all)."
    ),
]


def _filter(
    event_id: list[str] | None,
    event_type: list[str] | None,
    reason: list[str] | None,
    original_topic: list[str] | None,
    consumer: list[str] | None,
) -> dlq.Filter:
    return dlq.Filter(
        event_ids=set(event_id or ()),
        types=set(event_type or ()),
        reasons=set(reason or ()),
        original_topics=set(original_topic or ()),
        consumers=set(consumer or ()),
    )


EventIdOpt = Annotated[
    list[str] | None, typer.Option("--event-id", help="CloudEvent id (repeatable).")
]
TypeOpt = Annotated[list[str] | None, typer.Option("--type", help="Event type (repeatable).")]
ReasonOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--reason", help="undecodable | unknown_type | invalid_data | handler_failed (repeatable)."
    ),
]
OriginalOpt = Annotated[
    list[str] | None, typer.Option("--original-topic", help="Original topic (repeatable).")
]
ConsumerOpt = Annotated[
    list[str] | None, typer.Option("--consumer", help="Consumer group that gave up (repeatable).")
]


@dlq_app.command("list")
def dlq_list(
    topic: TopicOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N entries.")] = 50,
    event_id: EventIdOpt = None,
    event_type: TypeOpt = None,
    reason: ReasonOpt = None,
    original_topic: OriginalOpt = None,
    consumer: ConsumerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Dead letters, newest last, with why they were dead-lettered and whether replayed."""
    settings = kafka_settings()
    wanted = _filter(event_id, event_type, reason, original_topic, consumer)

    async def run() -> tuple[list[dlq.Entry], dict[str, dict[str, Any]]]:
        found = await dlq.entries(settings, dlq.dlq_topics(settings, topic))
        return [e for e in found if wanted.matches(e)], await dlq.replay_log(settings)

    found, done = _run(run())
    found.sort(key=lambda e: (e.timestamp_ms or 0, e.topic, e.partition, e.offset))
    shown = found[-limit:]
    if as_json:
        for entry in shown:
            doc = entry.to_json()
            doc["replayed"] = done.get(entry.ref)
            print(json.dumps(doc, ensure_ascii=False))
        return
    table = Table(title=f"Dead letters ({len(shown)} of {len(found)})")
    for col in (
        "dead-letter topic",
        "position",
        "event id",
        "type",
        "reason",
        "consumer",
        "replayed",
    ):
        table.add_column(col)
    for entry in shown:
        replayed = done.get(entry.ref)
        table.add_row(
            entry.topic,
            entry.position,
            entry.event_id or "-",
            entry.event_type or "-",
            entry.reason,
            entry.dlq("consumer"),
            f"to {replayed.get('to')}" if replayed else "no",
        )
    out().print(table)


async def _find(
    settings: Any, topic: str | None, position: str | None, wanted: dlq.Filter
) -> list[dlq.Entry]:
    if position is not None:
        if topic is None:
            raise OpsError("a position needs its topic: TOPIC PARTITION:OFFSET", UNREACHABLE)
        partition, offset = dlq.parse_position(position)
        entry = await dlq.entry_at(settings, topic, partition, offset)
        return [entry] if wanted.matches(entry) else []
    found = await dlq.entries(settings, dlq.dlq_topics(settings, topic))
    return [e for e in found if wanted.matches(e)]


TopicArg = Annotated[
    str | None,
    typer.Argument(help="Dead-letter topic (or its original topic) of the entry."),
]
PositionArg = Annotated[
    str | None, typer.Argument(help="PARTITION:OFFSET in the dead-letter topic.")
]


@dlq_app.command("show")
def dlq_show(
    topic: TopicArg = None,
    position: PositionArg = None,
    event_id: Annotated[str | None, typer.Option("--event-id", help="Find it by event id.")] = None,
) -> None:
    """One dead letter: why it failed, its attributes and its data."""
    if position is None and event_id is None:
        err().print("error: give TOPIC PARTITION:OFFSET or --event-id ID")
        raise typer.Exit(UNREACHABLE)
    settings = kafka_settings()
    wanted = dlq.Filter(event_ids={event_id} if event_id else set())

    async def run() -> tuple[list[dlq.Entry], dict[str, dict[str, Any]]]:
        return await _find(settings, topic, position, wanted), await dlq.replay_log(settings)

    found, done = _run(run())
    if not found:
        err().print("error: no such dead letter")
        raise typer.Exit(PROBLEM)
    console = out()
    for entry in found:
        table = Table(title=f"Dead letter {entry.ref}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        doc = entry.to_json()
        for k, v in doc["dead_letter"].items():
            table.add_row(k, v)
        for k, v in doc["attributes"].items():
            table.add_row(f"ce_{k}", v)
        table.add_row("key", str(doc["key"]))
        replayed = done.get(entry.ref)
        table.add_row("replayed", json.dumps(replayed) if replayed else "no")
        console.print(table)
        body = doc.get("data", doc.get("value_base64"))
        console.print_json(
            json.dumps(body, ensure_ascii=False)
        ) if "data" in doc else console.print(f"value (base64): {body}")


@dlq_app.command("export")
def dlq_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSON-lines file to write ('-': stdout).")
    ],
    topic: TopicArg = None,
    position: PositionArg = None,
    event_id: EventIdOpt = None,
    event_type: TypeOpt = None,
    reason: ReasonOpt = None,
    original_topic: OriginalOpt = None,
    consumer: ConsumerOpt = None,
) -> None:
    """Write dead letters to a file, one JSON object a line, to fix and `replay --from-file`.

    Edit "data" (or "attributes"); keep "dlq" (it names the entry the fix replaces)."""
    settings = kafka_settings()
    wanted = _filter(event_id, event_type, reason, original_topic, consumer)
    found = _run(_find(settings, topic, position, wanted))
    lines = "".join(json.dumps(e.to_json(), ensure_ascii=False, indent=None) + "\n" for e in found)
    if str(output) == "-":
        sys.stdout.write(lines)
    else:
        output.write_text(lines)
        err().print(f"{len(found)} dead letter(s) written to {output}")
    if not found:
        raise typer.Exit(PROBLEM)


@dlq_app.command("replay")
def dlq_replay(
    topic: TopicArg = None,
    position: PositionArg = None,
    event_id: EventIdOpt = None,
    event_type: TypeOpt = None,
    reason: ReasonOpt = None,
    original_topic: OriginalOpt = None,
    consumer: ConsumerOpt = None,
    all_entries: Annotated[
        bool, typer.Option("--all", help="Every dead letter (of --topic).")
    ] = False,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", "-f", help="Replay the (edited) entries of a `dlq export` file."
        ),
    ] = None,
    edit: Annotated[
        bool,
        typer.Option("--edit", help="Open each chosen entry in $EDITOR and replay the result."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replay entries that were replayed before.")
    ] = False,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate",
            help="Refuse entries whose event the consumers would reject again.",
        ),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed.")
    ] = False,
) -> None:
    """Publish dead letters again on their ORIGINAL topic (from the dead-letter headers).

    Safe: consumers skip event ids they already handled, so only what never took
    effect takes effect, once. Each replay is recorded; a replayed entry is not
    replayed again without --force. Exit 1 if any chosen entry was refused or failed."""
    settings = kafka_settings()
    wanted = _filter(event_id, event_type, reason, original_topic, consumer)
    if from_file is None and position is None and wanted.empty() and not all_entries:
        err().print(
            "error: choose what to replay: TOPIC PARTITION:OFFSET, --event-id, --type, --reason,"
            " --original-topic, --consumer, --all, or --from-file"
        )
        raise typer.Exit(UNREACHABLE)
    if from_file is not None:
        chosen = [e for e in _read_export(from_file) if wanted.matches(e)]
    else:
        chosen = _run(_find(settings, topic, position, wanted))
    if edit:
        chosen = [_edited(e) for e in chosen]
    if not chosen:
        err().print("error: no dead letter matches")
        raise typer.Exit(PROBLEM)
    if dry_run:
        _outcome_table([dlq.Outcome(e, "would replay", e.original_topic) for e in chosen])
        return
    with Progress(
        TextColumn("[bold]replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err(),
    ) as progress:
        task = progress.add_task("", total=len(chosen))

        def step(outcome: dlq.Outcome) -> None:
            progress.update(task, advance=1, description=f"{outcome.entry.ref} {outcome.status}")

        outcomes = _run(dlq.replay(settings, chosen, force=force, validate=validate, progress=step))
    _outcome_table(outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("replayed", "already_replayed")}
    refused = len(outcomes) - sum(counts.values())
    err().print(
        f"{counts['replayed']} replayed, {counts['already_replayed']} replayed before"
        f" (skipped), {refused} refused or failed"
    )
    if refused:
        raise typer.Exit(PROBLEM)


def _read_export(path: Path) -> list[dlq.Entry]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        err().print(f"error: cannot read {path}: {exc}")
        raise typer.Exit(UNREACHABLE) from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append(dlq.Entry.from_json(json.loads(line)))
        except (ValueError, OpsError) as exc:
            err().print(f"error: {path}:{number}: {exc}")
            raise typer.Exit(UNREACHABLE) from None
    return found


def _edited(entry: dlq.Entry) -> dlq.Entry:
    text = click.edit(json.dumps(entry.to_json(), ensure_ascii=False, indent=2), extension=".json")
    if text is None:
        err().print(f"error: {entry.ref}: editor closed without saving; nothing replayed")
        raise typer.Exit(PROBLEM)
    try:
        return dlq.Entry.from_json(json.loads(text))
    except (ValueError, OpsError) as exc:
        err().print(f"error: {entry.ref}: edited entry is not valid: {exc}")
        raise typer.Exit(PROBLEM) from None


def _outcome_table(outcomes: list[dlq.Outcome]) -> None:
    table = Table(title="Replay")
    for col in ("dead letter", "event id", "type", "to", "result", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"replayed": "green", "already_replayed": "yellow"}
    for o in outcomes:
        c = colour.get(o.status, "red")
        table.add_row(
            o.entry.ref + (" (edited)" if o.entry.edited else ""),
            o.entry.event_id,
            o.entry.event_type,
            o.entry.original_topic,
            f"[{c}]{o.status}[/{c}]",
            o.detail,
        )
    out().print(table)


# -- rebuild, settings, demo -------------------------------------------------------------------


@app.command()
def rebuild(name: ServiceName) -> None:
    """Rebuild a read model from the topics (awards: participants; notifications: contacts)."""
    out().print(_run(rebuild_ops.rebuild(service(name))))


@app.command("settings")
def show_settings(
    name: ServiceName,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The effective settings of a service (its own, Kafka, delivery), secrets masked."""
    svc = service(name)
    try:
        sections = {
            svc.name: masked(settings_items(svc.settings())),
            "kafka": masked(settings_items(kafka_settings())),
            "delivery": masked(settings_items(svc.delivery())),
        }
    except OpsError as exc:
        err().print(f"[red]error:[/red] {exc.message}", soft_wrap=True)
        raise typer.Exit(exc.code) from None
    if as_json:
        print(json.dumps(sections, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Effective settings of {svc.name}")
    for col in ("section", "setting", "value"):
        table.add_column(col, overflow="fold")
    for section, values in sections.items():
        for key, value in values.items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            table.add_row(section, key, shown)
    out().print(table)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def demo(ctx: typer.Context) -> None:
    """Run the local demo (`pearls-demo`); every argument is passed through (try --help)."""
    try:
        from pearls_demo.cli import main as demo_main
    except ImportError:
        err().print("error: the demo (package pearls-demo) is not installed here; `make run`")
        raise typer.Exit(UNREACHABLE) from None

    raise typer.Exit(demo_main(list(ctx.args)))


def _str(value: object) -> str:
    return "-" if value is None else str(value)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def main() -> None:
    # aiokafka logs each failed connection attempt; the CLI reports the failure once itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        app()
    except OpsError as exc:  # raised outside _run (argument checks, settings)
        err().print(f"[red]error:[/red] {exc.message}", soft_wrap=True)
        sys.exit(exc.code)


__all__ = ["OK", "app", "main"]
