"""`python -m capport.client check|login`: the client commands on their own."""

import click

from capport.client.commands import check, login


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """capport's client commands: check the network, wait for a login."""


main.add_command(check)
main.add_command(login)

if __name__ == "__main__":
    main()
