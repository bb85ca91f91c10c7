"""Batch mode's background offset commits: what is committed when the broker refuses.

The Kafka consumer here is a stand-in that records commits and refuses the first;
the real broker path is in ``integration/test_consumer_batch.py``.
"""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from pearls_shared.consumer import _OffsetCommits

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", partition, offset, 0, 0, None, b"{}", None, 0, 2, ())


class Consumer:
    def __init__(self, *, refuse: int = 0) -> None:
        self.assigned = {A, B}
        self.commits: list[dict[TopicPartition, int]] = []
        self.refuse = refuse
        self.answer = asyncio.Event()
        self.answer.set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.answer.wait()
        if self.refuse:
            self.refuse -= 1
            raise CommitFailedError("rebalancing")
        self.commits.append(dict(offsets))


def commits_for(consumer: Consumer, *, wait: bool = False) -> _OffsetCommits:
    return _OffsetCommits(consumer, "g", wait=wait)  # type: ignore[arg-type]


async def test_the_next_offset_of_each_partition_is_committed_without_waiting() -> None:
    consumer = Consumer()
    consumer.answer.clear()  # the broker lingers
    commits = commits_for(consumer)
    await commits.add([record(0, 4), record(0, 5), record(1, 9)])  # returns at once
    assert consumer.commits == []
    consumer.answer.set()
    await commits.settle()
    assert consumer.commits == [{A: 6, B: 10}]


async def test_batches_finished_while_a_commit_is_in_flight_go_in_one_commit_after_it() -> None:
    consumer = Consumer()
    consumer.answer.clear()
    commits = commits_for(consumer)
    await commits.add([record(0, 1)])
    await asyncio.sleep(0)  # the first commit is waiting for its answer
    await commits.add([record(0, 2)])
    await commits.add([record(1, 7)])
    consumer.answer.set()
    await commits.settle()
    assert consumer.commits == [{A: 2}, {A: 3, B: 8}]


async def test_a_refused_commit_goes_again_with_the_next_and_a_revoked_partition_is_left() -> None:
    consumer = Consumer(refuse=1)
    commits = commits_for(consumer)
    await commits.add([record(0, 1), record(1, 1)])
    await commits.settle()
    assert consumer.commits == []  # refused: kept for the next
    consumer.assigned = {B}  # partition 0 went to another member, which the inbox covers
    await commits.add([record(1, 2)])
    await commits.settle()
    assert consumer.commits == [{B: 3}]


async def test_after_drain_each_batch_waits_for_its_commit() -> None:
    consumer = Consumer()
    commits = commits_for(consumer, wait=True)
    await commits.add([record(0, 3)])
    assert consumer.commits == [{A: 4}]  # already answered when add returns
