"""`python -m bot.cli`: the `mailtrace` command."""

from bot.cli import main

raise SystemExit(main())
