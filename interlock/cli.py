"""The ``interlock`` command. Subcommands load lazily so ``interlock --help`` stays fast."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group
_COMMANDS: dict[str, str] = {
    "serve": "interlock.commands.serve:serve",
    "up": "interlock.commands.up:up",
    "migrate": "gateway.db.command:migrate",
    "ship-journal": "interlock.commands.journal:ship_journal",
    "emulator": "interlock.emulator.command:emulator",
    "worker": "interlock.worker.command:worker",
    "keys": "interlock.commands.admin:keys",
    "teams": "interlock.commands.admin:teams",
    "models": "interlock.commands.admin:models",
    "feedback": "interlock.commands.feedback:feedback",
    "cache": "interlock.commands.cache:cache",
    "router": "interlock.commands.router:router",
    "policies": "interlock.commands.policies:policies",
    "guardrails": "interlock.commands.guardrails:guardrails",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Interlock: one OpenAI-compatible endpoint in front of vLLM workers and commercial APIs."""


if __name__ == "__main__":
    main()
