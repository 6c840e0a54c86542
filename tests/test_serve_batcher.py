"""The server's batcher on its own: groups taken whole under the lock by several decoders
racing for them, decoders that survive whatever a group raises, and a health that says when
none can decode."""

import asyncio
import random
import threading
import time

import pytest

from seqcli.server.batcher import Batcher, Full, group_key
from seqcli.server.metrics import Metrics


def echo(requests):
    time.sleep(random.random() * 0.002)  # decoders finish in any order
    return [r["inputs"] for r in requests]


async def flood(batcher, n, key=lambda i: "same"):
    jobs = []
    for i in range(n):
        jobs.append(batcher.submit({"inputs": [str(i)]}, key(i), 1))
        if i % 7 == 0:
            await asyncio.sleep(random.random() * 0.003)  # arrivals spread over the decoders' waits
    return await asyncio.gather(*(j.future for j in jobs), return_exceptions=True)


def test_racing_decoders_answer_every_request_and_none_dies():
    random.seed(0)
    metrics = Metrics()
    batcher = Batcher(lambda i, r: echo(r), None, metrics, max_batch=8, wait=0.002, max_queue=10_000, workers=4)
    metrics.decoders = lambda: (batcher.alive, batcher.restarts)
    try:
        answers = asyncio.run(flood(batcher, 5_000, key=lambda i: f"k{i % 3}"))
        assert answers == [[str(i)] for i in range(5_000)]
        assert batcher.alive == 4 and batcher.restarts == 0 and batcher.health() is None
        assert "seqcli_decoders 4" in metrics.text() and "seqcli_decoder_restarts_total 0" in metrics.text()
        assert batcher.metrics.batches.count < 5_000  # requests did share batches
    finally:
        batcher.stop()
    assert batcher.alive == 0


def test_an_error_in_a_group_is_its_answer_and_an_escaped_one_restarts_the_decoder():
    calls = {"n": 0}

    def decode(i, requests):
        calls["n"] += 1
        if requests[0]["inputs"] == ["bad"]:
            raise ValueError("this group cannot be decoded")
        if requests[0]["inputs"] == ["exit"]:
            raise SystemExit("escapes the group's handling")
        return [r["inputs"] for r in requests]

    metrics = Metrics()
    batcher = Batcher(decode, None, metrics, max_batch=1, wait=0.0, max_queue=100, workers=2)
    metrics.decoders = lambda: (batcher.alive, batcher.restarts)

    async def go():
        bad = batcher.submit({"inputs": ["bad"]}, "a", 1)
        with pytest.raises(ValueError, match="cannot be decoded"):
            await bad.future
        gone = batcher.submit({"inputs": ["exit"]}, "b", 1)
        with pytest.raises(SystemExit):
            await gone.future  # its request hears of it, never waits forever
        return await asyncio.gather(*(batcher.submit({"inputs": [str(i)]}, "c", 1).future for i in range(50)))

    try:
        assert asyncio.run(go()) == [[str(i)] for i in range(50)]
        deadline = time.time() + 5
        while batcher.alive < 2 and time.time() < deadline:
            time.sleep(0.01)
        assert batcher.alive == 2 and batcher.restarts == 1
        assert "SystemExit: escapes the group's handling" == batcher.last_error
        assert "seqcli_decoder_restarts_total 1" in metrics.text()
    finally:
        batcher.stop()


def test_a_decoder_failing_over_and_over_is_left_down_and_health_says_why():
    def decode(i, requests):
        raise SystemExit("the model is gone")

    batcher = Batcher(decode, None, Metrics(), max_batch=1, wait=0.0, max_queue=100, workers=1)

    async def go():
        for _ in range(Batcher.GIVE_UP):
            job = batcher.submit({"inputs": ["x"]}, "a", 1)
            with pytest.raises(SystemExit):
                await job.future
            deadline = time.time() + 5
            while not batcher.failures[0] or (batcher.alive == 0 and len(batcher.failures[0]) < Batcher.GIVE_UP
                                                and time.time() < deadline):
                await asyncio.sleep(0.01)
        deadline = time.time() + 5
        while batcher.alive and time.time() < deadline:
            await asyncio.sleep(0.01)
        with pytest.raises(Full):  # nothing would ever answer it
            batcher.submit({"inputs": ["x"]}, "a", 1)

    asyncio.run(go())
    assert batcher.alive == 0 and batcher.restarts == Batcher.GIVE_UP - 1
    assert batcher.health() == ("no decoder is running (each failed 5 times in 60 s; the last: SystemExit: the model "
                                "is gone)")
    batcher.stop()


def test_sampling_with_a_seed_and_pictures_are_decoded_alone():
    assert group_key({"inputs": ["a"], "beam_size": 2}, "inputs") == group_key({"inputs": ["b"], "beam_size": 2},
                                                                                 "inputs")
    assert group_key({"inputs": ["a"], "beam_size": 2}, "inputs") != group_key({"inputs": ["a"], "beam_size": 3},
                                                                                 "inputs")
    seeded = {"prime": "a", "temperature": 1.0, "seed": 3}
    assert group_key(seeded, "prime") != group_key(seeded, "prime")
    assert threading.active_count() >= 1
