"""The `pycdi` command: one click group, with one module per command group."""

from __future__ import annotations

import importlib

import click

#: name -> (module under pycdi.cli, attribute). Imported on use: a worker (`pycdi importer`) must not pay for
#: the cluster and controller imports (half a second) on every start.
_COMMANDS = {
    "importer": ("importer", "importer"),
    "uploadserver": ("uploadserver", "uploadserver"),
    "cloner": ("cloner", "cloner"),
    "up": ("up", "up"),
    "controller": ("controllers", "controller"),
    "user": ("user", "user"),
    "worker-probe": ("worker_probe", "worker_probe"),
    "image-upload": ("imageupload", "image_upload"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*_COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pycdi")
def cli() -> None:
    """pycdi: KubeVirt's Containerized Data Importer, with an embedded single-machine cluster."""


def main() -> None:
    cli()
