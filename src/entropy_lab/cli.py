"""`entropy-lab`: one subcommand per DVC stage. Bad input exits 2 with one line on stderr."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import click

from entropy_lab.config import PARAMS_FILE
from entropy_lab.errors import UserError
from entropy_lab.stages.common import start

params_option = click.option(
    "--params",
    "params_path",
    type=click.Path(path_type=Path),
    default=PARAMS_FILE,
    show_default=True,
    help="Parameters file.",
)


def user_errors(fn):
    """Turn a `UserError` into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


class OneLineGroup(click.Group):
    """Click's usage errors (a bad option value, a missing argument) as one `error:` line and
    exit 2, like every other bad input, instead of a usage block."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(0)
        except click.ClickException as exc:
            message = exc.format_message()  # it quotes the value: `--length 999...` of any size
            click.echo(
                f"error: {message if len(message) < 300 else message[:296] + '...'}", err=True
            )
            sys.exit(2)
        except click.exceptions.Abort:
            sys.exit(1)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Reproducible experiments on randomness in language models."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_libraries()


def quiet_libraries() -> None:
    """What every stage (and benchmark) does before importing the ML libraries."""
    # bitsandbytes warns at import about CPU kernels it cannot use; quantisation is refused on CPU anyway.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if not sys.stderr.isatty():  # libraries' progress bars only on a terminal, like ours
        for library in ("HF_HUB", "HF_DATASETS"):  # read when transformers / datasets import
            os.environ.setdefault(f"{library}_DISABLE_PROGRESS_BARS", "1")


@main.command("check-params")
@params_option
@user_errors
def check_params_cmd(params_path: Path) -> None:
    """Stage `check-params`: validate params.yaml before DVC removes any stage's outputs."""
    from entropy_lab.config import load_params
    from entropy_lab.stages import check_params

    load_params(params_path)
    check_params.run()


@main.command("harvest")
@params_option
@user_errors
def harvest_cmd(params_path: Path) -> None:
    """Stage `harvest`: collect, health-test and assess entropy into data/entropy/pool.bin."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import harvest

    harvest.run(params)


@main.command("build")
@params_option
@click.option("--model", "model_name", required=True, help="A model in models.build.")
@user_errors
def build_cmd(params_path: Path, model_name: str) -> None:
    """Stage `build@<model>`: train a built byte-level LM (models.built) into models/<model>/."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import build

    build.run(params, model_name)


@main.command("convert")
@params_option
@click.option("--model", "model_name", required=True, help="A model in models.imported.")
@user_errors
def convert_cmd(params_path: Path, model_name: str) -> None:
    """Stage `convert@<model>`: an imported GGUF (models.imported) into models/<model>/."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import convert

    convert.run(params, model_name)


@main.command("models")
@params_option
@user_errors
def models_cmd(params_path: Path) -> None:
    """Stage `models`: resolve every model in models.use into data/models/resolved.json."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import models

    models.run(params)


@main.command("tasks")
@params_option
@user_errors
def tasks_cmd(params_path: Path) -> None:
    """Stage `tasks`: randomness tasks with exact targets, as a DatasetDict in data/tasks."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import tasks

    tasks.run(params)


@main.command("train")
@params_option
@click.option("--model", "model_name", required=True, help="A model in training.models.")
@click.option("--variant", required=True, help="A loss in training.variants.")
@user_errors
def train_cmd(params_path: Path, model_name: str, variant: str) -> None:
    """Stage `train@<model>-<variant>`: LoRA SFT; the adapter goes to adapters/<model>/<variant>/."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import train

    train.run(params, model_name, variant)


@main.command("evaluate")
@params_option
@click.option("--model", "model_name", required=True, help="A model in training.models.")
@user_errors
def evaluate_cmd(params_path: Path, model_name: str) -> None:
    """Stage `evaluate@<model>`: exact and sampled answer distributions, base and adapters."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import evaluate

    evaluate.run(params, model_name)


@main.command("evaluate-untaught")
@params_option
@click.option("--model", "model_name", required=True, help="A model in evaluate.untaught.")
@user_errors
def evaluate_untaught_cmd(params_path: Path, model_name: str) -> None:
    """Stage `evaluate-untaught@<model>`: an untaught model's exact view of every record."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import evaluate_untaught

    evaluate_untaught.run(params, model_name)


def _model_length(fn):
    fn = click.option("--length", type=int, required=True, help="A value in ab.lengths.")(fn)
    return click.option("--model", "model_name", required=True, help="A model in ab.models.")(fn)


@main.command("ab-generate")
@params_option
@_model_length
@user_errors
def ab_generate_cmd(params_path: Path, model_name: str, length: int) -> None:
    """Stage `ab-generate@<model>-<length>`: every A/B sample, to data/ab/<model>/<length>/.

    Under `torchrun --nproc-per-node N` the samples are split over N processes."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import ab_generate

    ab_generate.run(params, model_name, length)


@main.command("ab-metrics")
@params_option
@_model_length
@user_errors
def ab_metrics_cmd(params_path: Path, model_name: str, length: int) -> None:
    """Stage `ab-metrics@<model>-<length>`: text metrics, to data/ab_metrics/<model>/<length>/."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import ab_metrics

    ab_metrics.run(params, model_name, length)


@main.command("ab-analyze")
@params_option
@user_errors
def ab_analyze_cmd(params_path: Path) -> None:
    """Stage `ab-analyze`: effect sizes, tests and verdicts per metric, to reports/ab/."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import ab_analyze

    ab_analyze.run(params)


@main.command("report")
@params_option
@user_errors
def report_cmd(params_path: Path) -> None:
    """Stage `report`: reports/report.md with figures, metrics.json and provenance.json."""
    params = start(params_path)  # before the stage's imports: numerics pinned first
    from entropy_lab.stages import report

    report.run(params)


@main.command("verify")
@params_option
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A bundle (`entropy-lab bundle`) holding the DVC-cached artefacts.",
)
@user_errors
def verify_cmd(params_path: Path, bundle: Path | None) -> None:
    """Check every claim of the report whose inputs are here (exit 1 when one does not hold,
    3 when none could be checked), and list what could not be checked, with its route."""
    import tempfile

    from entropy_lab.bundle import open_bundle
    from entropy_lab.config import load_params
    from entropy_lab.report.verify import ROUTES, verify

    params = load_params(params_path)
    with tempfile.TemporaryDirectory(prefix="entropy-lab-bundle-") as tmp:
        caches = [open_bundle(bundle, Path(tmp))] if bundle else []
        result = verify(params, caches=caches)
    for line in result.problems:
        click.echo(line)
    for line in result.checked:
        click.echo(f"checked: {line}")
    for line in result.unchecked:
        click.echo(f"not checked here: {line}")
    if result.unchecked:
        click.echo(f"verify: {len(result.unchecked)} parts not checked here; routes: {ROUTES}")
    if result.problems:
        click.echo(f"verify: {len(result.problems)} differences", err=True)
    elif not result.checked:
        click.echo("verify: nothing could be checked here", err=True)
    elif not result.unchecked:
        click.echo("verify: every number in reports/report.md and every record is reproduced")
    else:
        click.echo(f"verify: {len(result.checked)} checks held")
    sys.exit(result.exit_code)


@main.command("bundle")
@params_option
@click.option(
    "--out",
    "target",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The tarball to write (default: entropy-lab-<commit>.tar.gz).",
)
@user_errors
def bundle_cmd(params_path: Path, target: Path | None) -> None:
    """Write one tarball of the DVC-cached artefacts `verify` needs (for every claim of the
    report and of each experiment record), for `entropy-lab verify --bundle FILE`. FILE may
    be anywhere (not a directory or a link); it appears whole or not at all."""
    import subprocess

    from entropy_lab.bundle import summary, write
    from entropy_lab.config import load_params

    params = load_params(params_path)
    if target is None:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or "workspace"  # fmt: skip
        target = Path(f"entropy-lab-{head}.tar.gz")
    manifest = write(params, Path("."), target)
    click.echo(f"wrote {target}: {summary(manifest)}")


@main.command("record-experiment")
@click.argument("name")
@click.option("--command", "command", required=True, help="The `dvc exp run ...` that ran it.")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="The repository where it ran (its params.yaml, dvc.lock, reports/ and runs/).",
)
@click.option("--replace", is_flag=True, help="Replace a record of that name.")
@user_errors
def record_experiment_cmd(name: str, command: str, source: Path, replace: bool) -> None:
    """Keep an experiment as reports/experiments/NAME/: its command, commit, machine, params,
    dvc.lock and report, which `verify` checks (docs/reproducibility.md)."""
    from entropy_lab.experiments import record

    click.echo(f"recorded {record(name, command, source, replace=replace)}")


@main.command("reproduce-check")
@click.option(
    "--keep",
    type=click.Path(path_type=Path),
    default=None,
    help="Clone into this directory (created; it must be empty) and keep it.",
)
@click.option(
    "--table",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where the full claim table goes (default: a file in the temporary directory).",
)
@click.option(
    "--record",
    "keep_record",
    is_flag=True,
    help="Keep the result as reports/reproductions/<vendor>-<isa>-<date>.json.",
)
@user_errors
def reproduce_check_cmd(keep: Path | None, table: Path | None, keep_record: bool) -> None:
    """Clone this commit, `make repro` in the clone with its own code, and check the committed
    report's claims against the re-run (and list every output whose bytes differ)."""
    import tempfile

    from entropy_lab.report.claims import table as claim_table
    from entropy_lab.reproduce import keep_dir, record, reproduce_check, this_machine

    keep = keep_dir(keep) if keep is not None else None
    check = reproduce_check(Path("."), keep, say=lambda line: click.echo(line, err=True))
    if table is None:
        fd, name = tempfile.mkstemp(prefix=f"entropy-lab-claims-{check.commit[:10]}-",
                                    suffix=".txt")  # fmt: skip
        os.close(fd)
        table = Path(name)
    table.write_text("\n".join(claim_table(check.claims)) + "\n", encoding="utf-8")
    failed = [c for c in check.claims if not c.holds]
    click.echo(f"claims: {len(check.claims) - len(failed)} of {len(check.claims)} hold "
               f"(the full table: {table})")  # fmt: skip
    for c in failed[:8]:
        click.echo(
            f"  does not hold: {c.name}: committed {c.committed!r}, re-run {c.rerun!r} ({c.rule})"
        )
    if len(failed) > 8:
        click.echo(f"  ... and {len(failed) - 8} more in {table}")
    for line in check.bytes_differ[:8]:
        click.echo(f"  {line}")
    if len(check.bytes_differ) > 8:
        click.echo(f"  ... and {len(check.bytes_differ) - 8} more outputs differ")
    if check.bytes_differ:
        click.echo(
            f"reproduce-check: {len(check.bytes_differ)} outputs differ in their bytes on this "
            f"machine ({this_machine()}); bytes repeat only with the committing machine's "
            "numerics: CPU vendor, vector ISA, torch and thread count (docs/reproducibility.md)"
        )
    else:
        click.echo("reproduce-check: a fresh clone's `make repro` reproduced every committed byte")
    click.echo(f"reproduce-check: {check.seconds / 60:.1f} minutes")
    if keep_record:
        click.echo(f"recorded {record(check)}")
    if failed:
        click.echo(f"reproduce-check: {len(failed)} claims do not hold", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
