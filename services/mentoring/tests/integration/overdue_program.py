"""The overdue scheduler as a real process, for the crash tests.

``--die-in-transaction N`` kills the process (SIGKILL) inside the transaction of
its N-th milestone, after the event was written and before the commit;
``--pause S`` waits after each commit so an outside SIGKILL can land anywhere.
The relay does not run here: the outbox keeps every event the scheduler wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import uuid
from datetime import date

from pearls_mentoring.domain.matching import Weights
from pearls_mentoring.service_layer.handlers import Mentoring
from pearls_shared.db import create_pool
from pearls_shared.logging import configure_logging
from pearls_shared.settings import PostgresSettings


async def main(args: argparse.Namespace) -> None:
    configure_logging("test-overdue")
    pool = await create_pool(PostgresSettings(database_url=args.dsn))
    service = Mentoring(pool, Weights())
    seen = 0

    async def before_commit(milestone_id: uuid.UUID) -> None:
        nonlocal seen
        seen += 1
        if seen == args.die_in_transaction:
            print(f"dying inside the transaction of {milestone_id}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    async def after_commit(milestone_id: uuid.UUID) -> None:
        print(f"noticed {milestone_id}", flush=True)
        await asyncio.sleep(args.pause)

    while True:
        await service.notice_overdue(
            date.fromisoformat(args.today), before_commit=before_commit, after_commit=after_commit
        )
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--today", required=True)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--die-in-transaction", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
