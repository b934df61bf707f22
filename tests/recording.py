"""A runner that runs commands for real and remembers them (tests count round trips with it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.sources.runner import LocalRunner


class RecordingRunner(LocalRunner):
    """The real local runner, remembering each command it ran."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.commands: list[str] = []

    async def batches(self, command: str) -> AsyncIterator[list[str]]:
        self.commands.append(command)
        async for batch in super().batches(command):
            yield batch
