"""A seeded in-process network: drop, delay, duplicate, reorder, partitions (also one-way).

Endpoints are *instances* ("v1", or "v0#a"/"v0#b" for Twins); a message addressed to a
validator name reaches every instance of that name the sender can currently reach.
Reordering falls out of random per-message delays.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class LinkFaults:
    drop_probability: float = 0.0
    duplicate_probability: float = 0.0
    delay_ticks_min: int = 1
    delay_ticks_max: int = 1


@dataclass(slots=True)
class Network:
    rng: random.Random
    instances: dict[str, str]  # instance -> validator name
    faults: LinkFaults = field(default_factory=LinkFaults)
    blocked: set[tuple[str, str]] = field(default_factory=set)  # (src, dst) instance pairs
    down: set[str] = field(default_factory=set)
    queue: list[tuple[int, int, str, str, bytes]] = field(default_factory=list)
    counter: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    in_flight_max: int = 200_000

    def reachable(self, src: str, dst: str) -> bool:
        return dst not in self.down and (src, dst) not in self.blocked

    def send(self, now: int, src: str, to_name: str, data: bytes) -> None:
        for dst, name in self.instances.items():
            if name == to_name and dst != src:
                self._send_one(now, src, dst, data)

    def broadcast(self, now: int, src: str, data: bytes) -> None:
        own = self.instances[src]
        for dst, name in self.instances.items():
            if name != own:
                self._send_one(now, src, dst, data)

    def _send_one(self, now: int, src: str, dst: str, data: bytes) -> None:
        self.sent += 1
        if not self.reachable(src, dst) or len(self.queue) >= self.in_flight_max:
            self.dropped += 1
            return
        f = self.faults
        if f.drop_probability and self.rng.random() < f.drop_probability:
            self.dropped += 1
            return
        copies = 1
        if f.duplicate_probability and self.rng.random() < f.duplicate_probability:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            delay = self.rng.randint(f.delay_ticks_min, f.delay_ticks_max)
            self.counter += 1
            heapq.heappush(self.queue, (now + delay, self.counter, src, dst, data))

    def due(self, now: int) -> list[tuple[str, str, bytes]]:
        out = []
        while self.queue and self.queue[0][0] <= now:
            _, _, src, dst, data = heapq.heappop(self.queue)
            # A partition that started while the message was in flight also cuts it.
            if self.reachable(src, dst):
                out.append((src, dst, data))
            else:
                self.dropped += 1
        return out

    # -- partitions --------------------------------------------------------------------

    def heal(self) -> None:
        self.blocked.clear()

    def split(self, side_a: set[str], side_b: set[str]) -> None:
        for a in side_a:
            for b in side_b:
                self.blocked.add((a, b))
                self.blocked.add((b, a))

    def one_way(self, src: str, dsts: set[str]) -> None:
        for d in dsts:
            self.blocked.add((src, d))
