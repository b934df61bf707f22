"""`python -m bot.cli`: the `mailtrace` command."""

from bot.cli import run

run()
