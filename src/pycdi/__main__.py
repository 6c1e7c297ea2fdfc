"""`python -m pycdi`: the same as the `pycdi` command."""

from pycdi.cli.main import main

main()
