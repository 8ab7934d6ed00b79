"""The CLI surface: only real subcommands."""

from click.testing import CliRunner

from entropy_lab.cli import main


def test_help_lists_only_real_stages():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].split()
    assert [c for c in commands if c.islower() and c.isalpha()] == ["models"]
