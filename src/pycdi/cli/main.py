"""The `pycdi` command: one click group, with one module per command group."""

from __future__ import annotations

import click

from . import controllers, importer, up, user, worker_probe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pycdi")
def cli() -> None:
    """pycdi: KubeVirt's Containerized Data Importer, with an embedded single-machine cluster."""


cli.add_command(importer.importer)
cli.add_command(up.up)
cli.add_command(controllers.controller)
cli.add_command(user.user)
cli.add_command(worker_probe.worker_probe)


def main() -> None:
    cli()
