"""
Leader-only work: built anew for each leadership, started once built,
stopped at once when it ends; an engine that refuses every call once this
hub no longer leads.
"""

from __future__ import annotations


import pytest
import pytest_twisted
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from zope.interface.verify import verifyObject

from statushub.cluster.leaderonly import FencedEngine, LeaderOnly
from statushub.cluster.lease import _Observed
from statushub.engine import EngineError
from statushub.interfaces import IContainerEngine
from tests.fakeengine import FakeEngine


class Switch(_Observed):
    """
    A leadership the test turns on and off.
    """

    def __init__(self) -> None:
        super().__init__()
        self.isLeader = False
        self.term = 0
        self.steppedDown: list[str] = []

    def lead(self) -> None:
        self.term += 1
        self.isLeader = True
        self._tell(True)

    def lose(self) -> None:
        self.isLeader = False
        self._tell(False)

    def stepDown(self, why: str) -> None:
        self.steppedDown.append(why)
        self.lose()


class Work(Service):
    def __init__(self, term: int) -> None:
        self.term = term


def test_runsOnlyWhileLeading() -> None:
    switch = Switch()
    built: list[Work] = []

    async def build(term: int) -> Work:
        built.append(Work(term))
        return built[-1]

    only = LeaderOnly(switch, build)
    only.startService()
    assert built == [] and only.current is None
    switch.lead()
    assert [w.term for w in built] == [1] and built[0].running
    switch.lose()
    assert not built[0].running and only.current is None
    switch.lead()
    assert [w.term for w in built] == [1, 2] and built[1].running and not built[0].running
    only.stopService()
    assert not built[1].running


def test_aLeadershipThatEndsWhileBuildingStartsNothing() -> None:
    switch = Switch()
    waiting: Deferred = Deferred()
    work = Work(1)

    async def build(term: int) -> Work:
        await waiting
        return work

    only = LeaderOnly(switch, build)
    only.startService()
    switch.lead()
    switch.lose()
    waiting.callback(None)
    assert not work.running and only.current is None


def test_aBuildThatFailsStepsDown() -> None:
    switch = Switch()

    async def build(term: int) -> Work:
        raise ConnectionError("Redis went away")

    only = LeaderOnly(switch, build)
    only.startService()
    switch.lead()
    assert switch.steppedDown == ["the leader's work could not be set up"]
    assert only.current is None


@pytest_twisted.ensureDeferred
async def test_fencedEngine() -> None:
    switch = Switch()
    engine = FakeEngine()
    fenced = FencedEngine(engine, switch)
    verifyObject(IContainerEngine, fenced)
    with pytest.raises(EngineError, match="no longer leads"):
        await fenced.ping()
    switch.lead()
    await fenced.ping()
    assert await fenced.listContainers({}) == []
    switch.lose()
    with pytest.raises(EngineError):
        await fenced.listContainers({})
