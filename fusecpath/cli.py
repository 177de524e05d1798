"""The ``fusecpath`` command line: a thin layer over the Python API.

The app is built in a function and plugins load only when a command needs the registry.
Exit codes: 0 ok, 1 failures (including bad input), 2 usage. ``--json`` output is documented in
docs/cli.md and stable.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from fusecpath.errors import FusecpathError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def console():
    from rich.console import Console

    return Console()


def _version_callback(value: bool) -> None:
    if value:
        from fusecpath import __version__

        typer.echo(f"fusecpath {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="fusecpath",
        help="A model zoo and fusion engine for pathology foundation models.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version."),
        ] = False,
    ) -> None:
        """fusecpath: fuse whichever pathology foundation models you name."""

    models = typer.Typer(help="List and inspect the registered foundation models.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("list")
    def models_list(
        level: Annotated[str | None, typer.Option(help="Only 'patch' or 'slide' models.")] = None,
        all_: Annotated[
            bool, typer.Option("--all", help="Also catalogue models whose plugin is not installed.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List registered models (without importing torch)."""
        from fusecpath.api import describe_encoders

        if level not in (None, "patch", "slide"):
            raise typer.BadParameter("use 'patch' or 'slide'", param_hint="--level")
        rows = describe_encoders(level=level, include_catalogue=all_)
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("name", "level", "dim", "licence", "gated", "source", "plugin")
        for row in rows:
            style = None if row["installed"] else "dim"
            plugin = row["plugin"] if row["installed"] else f"{row['plugin']} ({row['install']})"
            table.add_row(
                row["name"],
                row["level"],
                str(row["embed_dim"]),
                row["license"],
                "yes" if row["gated"] else "",
                row["source"],
                plugin,
                style=style,
            )
        console().print(table)

    @models.command("info")
    def models_info(name: str, as_json: JsonOpt = False) -> None:
        """Everything about one model: spec, weights, licence, gating, plugin, missing packages."""
        from rich.markup import escape

        from fusecpath.api import describe_encoder

        info = describe_encoder(name)
        if as_json:
            print_json(info)
            return
        out = console()
        for key, value in info.items():
            if value not in (None, "", [], {}, ()):
                out.print(f"[bold]{key}[/bold]: {escape(str(value))}", highlight=False)

    @app.command("plugins")
    def plugins(as_json: JsonOpt = False) -> None:
        """List the loaded plugins: distribution, version, hooks and models."""
        from fusecpath.api import describe_plugins

        rows = describe_plugins()
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("distribution", "version", "hooks", "models")
        for row in rows:
            table.add_row(
                row["distribution"], row["version"] or "", ", ".join(row["hooks"]), ", ".join(row["models"])
            )
        console().print(table)

    _add_zoo_commands(app)
    _add_hub_commands(app)
    _add_features_commands(app)
    _add_fusion_commands(app)
    _add_demo_command(app)
    return app


def _models_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "models":
            return group.typer_instance
    raise RuntimeError("the 'models' command group is missing")


def _add_zoo_commands(app: typer.Typer) -> None:
    models = _models_group(app)

    @models.command("verify")
    def models_verify(name: str, as_json: JsonOpt = False) -> None:
        """Build a model's architecture on the meta device: parameter count and output dim, no download."""
        from fusecpath.encoders.verify import verify_encoder

        report = verify_encoder(name)
        if as_json:
            print_json(report)
        elif report["built"]:
            status = "ok" if report["ok"] else "MISMATCH"
            typer.echo(
                f"{report['name']}: {report['parameters']:,} parameters, output dim "
                f"{report['output_dim']} (declared {report['embed_dim']}): {status}"
            )
        else:
            typer.echo(f"{report['name']}: not built here: {report['note']}")
        if report["ok"] is False:
            raise FusecpathError(f"{report['name']}: {report['note']}")


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A ``progress(label, done, total)`` callback drawing one rich bar a label on stderr (a slide's
    bar goes when it is complete), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bars:

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bars.add_task(label, total=total)
            bars.update(tasks[label], completed=done, total=total)
            if label != "slides" and done >= total:
                bars.remove_task(tasks.pop(label))

        yield progress


def _add_features_commands(app: typer.Typer) -> None:
    """extract, `features ls` and synth: slides to features, and a synthetic cohort."""

    @app.command("extract")
    def extract(
        slides: Annotated[list[str], typer.Argument(help="Slide files and/or folders of slides.")],
        fms: Annotated[str, typer.Option("--fms", help="Comma-separated FM names (patch and/or slide).")],
        out: Annotated[str, typer.Option("--out", help="The feature folder (one HDF5 file a slide).")],
        mpp: Annotated[
            float | None, typer.Option(help="µm/px for slides whose file does not say it.")
        ] = None,
        workers: Annotated[int, typer.Option(help="DataLoader worker processes reading patches.")] = 0,
        device: Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, ...")] = "cpu",
        batch_size: Annotated[int, typer.Option("--batch-size", help="Patches a batch.")] = 64,
        shard: Annotated[
            str | None, typer.Option(help="Only shard I/N of the slides (job arrays), e.g. 0/8.")
        ] = None,
        backend: Annotated[str, typer.Option(help="'local', or 'ray' for a Ray cluster.")] = "local",
        address: Annotated[str | None, typer.Option(help="Ray cluster: ray://HOST:PORT or auto.")] = None,
        ray_workers: Annotated[
            int, typer.Option("--ray-workers", help="Ray actors, each holding the FMs.")
        ] = 2,
        as_json: JsonOpt = False,
    ) -> None:
        """Read each slide once and embed its tissue patches with every FM named; exit 1 if any failed."""
        from fusecpath.features.extract import extract as run_extract

        names = [name.strip() for name in fms.split(",") if name.strip()]
        with _progress_bars(not as_json and sys.stderr.isatty()) as progress:
            result = run_extract(
                slides,
                names,
                out,
                mpp=mpp,
                workers=workers,
                device=device,
                batch_size=batch_size,
                progress=progress,
                shard=shard,
                backend=backend,
                address=address,
                ray_workers=ray_workers,
            )
        if as_json:
            print_json(result.to_dict())
        else:
            typer.echo(
                f"{len(result.written)} written, {len(result.skipped)} already stored, "
                f"{len(result.busy)} busy in another process, {len(result.failures)} failed -> {out}"
            )
            for _, message in result.failures:
                typer.echo(f"fusecpath: error: {message}", err=True)
        if result.failures:
            raise typer.Exit(1)

    features = typer.Typer(help="Inspect feature stores.", no_args_is_help=True)
    app.add_typer(features, name="features")

    @features.command("ls")
    def features_ls(
        directory: Annotated[str, typer.Argument(help="A feature folder.")],
        as_json: JsonOpt = False,
    ) -> None:
        """What is stored: one row a slide with its patch count and FMs (fusecpath, TRIDENT, CLAM files, or a TRIDENT job folder)."""
        from fusecpath.features.store import list_store

        rows = list_store(directory)
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("slide", "format", "patches", "mpp", "patch FMs", "slide FMs", "other")
        for row in rows:
            if row.get("error"):
                table.add_row(row["slide_id"], "error", "", "", row["error"], "", "")
                continue
            table.add_row(
                row["slide_id"],
                row["format"],
                str(row["n_patches"]),
                str(row["mpp"] or ""),
                ", ".join(row["patch_fms"]),
                ", ".join(row["slide_fms"]),
                ", ".join(row["other"]),
            )
        console().print(table)

    @app.command("synth")
    def synth(
        out: Annotated[str, typer.Option("--out", help="Folder to write the cohort into.")],
        slides: Annotated[int, typer.Option("--slides", help="Number of slides.")] = 40,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same cohort).")] = 0,
        mpp: Annotated[str, typer.Option(help="Level-0 µm/px; comma-separated values are cycled.")] = "0.5",
        formats: Annotated[str, typer.Option(help="svs and/or tiff, cycled over the slides.")] = "svs,tiff",
        design: Annotated[
            str,
            typer.Option(
                help="pixels: joint (cues on the same cells) or regions (cues in different regions); "
                "features: complementary, subtypes, redundant or teacher."
            ),
        ] = "joint",
        level: Annotated[
            str, typer.Option(help="pixels (slides to extract) or features (FM features, no slides).")
        ] = "pixels",
        layout: Annotated[str, typer.Option(help="features: trident (a TRIDENT job) or store.")] = "trident",
        fms: Annotated[
            str, typer.Option(help="features: the patch FMs simulated.")
        ] = "uni,conch-v1.5,virchow2",
        as_json: JsonOpt = False,
    ) -> None:
        """Write a synthetic cohort: H&E slides (SVS/TIFF pyramids) or FM features (--level features),
        with labels.csv and ground_truth.json."""
        if level not in ("pixels", "features"):
            raise typer.BadParameter("use pixels or features", param_hint="--level")
        if level == "features":
            from fusecpath.synthetic.features import make_feature_cohort

            feature_design = "complementary" if design == "joint" else design
            labels = make_feature_cohort(
                out, feature_design, slides, seed=seed, layout=layout, fms=tuple(fms.split(","))
            )
            if as_json:
                print_json(
                    {
                        "out": out,
                        "labels": str(labels),
                        "slides": slides,
                        "seed": seed,
                        "design": feature_design,
                    }
                )
            else:
                typer.echo(f"{slides} slides ({feature_design}), labels {labels}")
            return
        from fusecpath.synthetic.slides import make_cohort

        try:
            mpps = tuple(float(v) for v in mpp.split(","))
        except ValueError:
            raise typer.BadParameter("use numbers, e.g. 0.5 or 0.25,0.5", param_hint="--mpp") from None
        labels = make_cohort(
            out,
            slides,
            seed=seed,
            mpp=mpps,
            formats=tuple(f.strip() for f in formats.split(",")),
            design=design,
        )
        if as_json:
            print_json(
                {
                    "out": out,
                    "labels": str(labels),
                    "ground_truth": str(labels.parent / "ground_truth.json"),
                    "slides": slides,
                    "seed": seed,
                    "design": design,
                }
            )
        else:
            typer.echo(f"{slides} slides, labels {labels}")


def _add_fusion_commands(app: typer.Typer) -> None:
    """fuse: cross-validated FuseCPath with baselines on the same folds, and the final fused model."""

    @app.command("fuse")
    def fuse(
        fms: Annotated[
            str, typer.Option("--fms", help="Comma-separated FMs: patch FMs are fused, slide FMs teach.")
        ],
        labels: Annotated[
            str, typer.Option("--labels", help="labels.csv (slide_id,label | time,event | targets).")
        ],
        task: Annotated[str, typer.Option("--task", help="classification, regression or survival.")],
        out: Annotated[
            str, typer.Option("--out", help="The run folder (metrics, predictions, plot, model/).")
        ],
        features: Annotated[
            str | None, typer.Option("--features", help="Folder of extracted features.")
        ] = None,
        slides: Annotated[
            str | None, typer.Option("--slides", help="Folder of slides; missing features are extracted.")
        ] = None,
        preset: Annotated[
            str | None,
            typer.Option(help="paper (GPU-sized) or fast (CPU-sized); default: paper on CUDA, else fast."),
        ] = None,
        folds: Annotated[int | None, typer.Option(help="Cross-validation folds (split by patient).")] = None,
        seeds: Annotated[
            str | None, typer.Option(help="Seeds, comma-separated: the whole cross-validation once per seed.")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="One seed (same as --seeds N).")] = None,
        epochs: Annotated[int | None, typer.Option(help="Training epochs of every model.")] = None,
        device: Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, ...")] = "cpu",
        baselines: Annotated[
            bool, typer.Option("--baselines/--no-baselines", help="Also run the ablations and baselines.")
        ] = True,
        models: Annotated[
            str | None,
            typer.Option(help="MIL baselines to run, comma-separated (r2tmil,abmil,transmil,clam,dsmil)."),
        ] = None,
        clusters: Annotated[int | None, typer.Option(help="K, clusters a slide.")] = None,
        per_cluster: Annotated[
            int | None, typer.Option("--per-cluster", help="N_K, patches a cluster in a bag.")
        ] = None,
        bags: Annotated[int | None, typer.Option(help="N_R, bags a slide.")] = None,
        hidden: Annotated[int | None, typer.Option(help="Hidden size of every model.")] = None,
        layer_scale: Annotated[
            float | None,
            typer.Option(
                "--layer-scale", help="Start CR²T's branches at this gain (e.g. 0.01; small cohorts)."
            ),
        ] = None,
        cr2t: Annotated[
            str | None,
            typer.Option(
                "--cr2t",
                help="fusecpath (a region per cluster) or official (the official code's windows, "
                "CR-MSA and pooling); docs/method.md.",
            ),
        ] = None,
        optimizer: Annotated[str | None, typer.Option(help="sgd (the paper's) or adamw.")] = None,
        lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
        batch_size: Annotated[int | None, typer.Option("--batch-size", help="Bags a batch.")] = None,
        mpp: Annotated[
            float | None, typer.Option(help="µm/px for slides whose file does not say it.")
        ] = None,
        positive: Annotated[
            str | None,
            typer.Option(
                help="Binary task: the positive class (default: the labels file's, else the second sorted)."
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Fuse the FMs named (FuseCPath), with ablations and baselines on the same folds; print the table."""
        from fusecpath.fusion.fuse import BASELINE_MODELS, FuseOptions, default_preset
        from fusecpath.fusion.fuse import fuse as run_fuse

        names = [name.strip() for name in fms.split(",") if name.strip()]
        chosen = preset or default_preset(device)
        overrides: dict = {"baselines": baselines, "mpp": mpp, "positive": positive}
        if cr2t is not None:
            overrides["cr2t"] = cr2t
        if seeds is not None or seed is not None:
            overrides["seeds"] = _int_list(seeds, "--seeds") if seeds is not None else [seed]
        if models is not None:
            overrides["models"] = tuple(m.strip() for m in models.split(",") if m.strip()) or BASELINE_MODELS
        for key, value in (("folds", folds), ("n_clusters", clusters), ("per_cluster", per_cluster)):
            if value is not None:
                overrides[key] = value
        if bags is not None:
            overrides["n_bags"] = bags
        overrides["arch"] = {
            k: v for k, v in (("hidden", hidden), ("layer_scale", layer_scale)) if v is not None
        }
        train = {"epochs": epochs, "optimizer": optimizer, "lr": lr, "batch_size": batch_size}
        overrides["train"] = {"device": device, **{k: v for k, v in train.items() if v is not None}}
        options = FuseOptions.from_preset(chosen, **overrides)
        if not as_json:
            source = "--preset" if preset else f"default for {device}"
            typer.echo(
                f"fuse: preset {chosen} ({source}): {options.folds} folds x seeds {options.seeds}, "
                f"K {options.n_clusters} x {options.per_cluster} patches, {options.n_bags} bags, "
                f"{options.train.epochs} epochs {options.train.optimizer} lr {options.train.lr:g}",
                err=True,
            )
        with _fuse_progress(enabled=not as_json) as on_progress:
            options.on_progress = on_progress
            result = run_fuse(names, labels, task, out, features=features, slides=slides, options=options)
        from fusecpath.training.distributed import current

        if not current().is_main:  # under torchrun, rank 0 reports
            return
        if as_json:
            print_json(
                {
                    **result.metrics,
                    "out": str(result.out),
                    "predictions": str(result.predictions),
                    "plot": str(result.plot),
                    "model": str(result.checkpoint) if result.checkpoint else None,
                }
            )
            return
        from fusecpath.report.table import results_table

        console().print(results_table(result.metrics))
        typer.echo(
            f"{result.out}: report.html, metrics.json, predictions.csv, {result.plot.name}"
            + (f", {result.checkpoint.name}/" if result.checkpoint else "")
            + f" ({result.seconds:.0f} s)"
        )


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"use integers separated by commas, e.g. 0,1,2 (not {text!r})", param_hint=flag
        ) from None


@contextlib.contextmanager
def _fuse_progress(
    enabled: bool, loggers: tuple[str, ...] = ("fusecpath.fuse",)
) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar with ETA over a fuse run's training epochs, and its log lines above it."""
    import logging

    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]fuse[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    )
    handler = RichHandler(console=bar.console, show_time=False, show_path=False, show_level=False)
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    task_id = bar.add_task("", total=None)

    def update(done: int, total: int, what: str) -> None:
        bar.update(task_id, completed=done, total=total, description=what)

    try:
        with bar:
            yield update
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(handler)


def _add_demo_command(app: typer.Typer) -> None:
    """demo: the fusion evidence of `make demo` (fusecpath.demo), on a CPU, nothing downloaded."""

    @app.command("demo")
    def demo(
        out: Annotated[
            str, typer.Option("--out", help="Folder for the cohort and the run.", envvar="FUSECPATH_DEMO_DIR")
        ] = "demo-output",
        seeds: Annotated[str, typer.Option("--seeds", help="Seeds that repeat the whole CV.")] = "0,1,2",
    ) -> None:
        """A complementary feature-level cohort fused with every baseline and ablation; the table with 95% intervals."""
        import time
        from pathlib import Path

        from rich.console import Console

        from fusecpath.demo import run_demo
        from fusecpath.report.table import results_table

        start = time.perf_counter()
        with _fuse_progress(enabled=True, loggers=("fusecpath.demo", "fusecpath.fuse")) as on_progress:
            result = run_demo(Path(out), _int_list(seeds, "--seeds"), on_progress=on_progress)
        console = Console()
        console.print(results_table(result.metrics))
        console.print(
            f"report: {result.out}/report.html, metrics.json, predictions.csv, {result.plot.name}, model/ "
            f"({time.perf_counter() - start:.0f} s in all)"
        )


def _add_hub_commands(app: typer.Typer) -> None:
    """push / pull / predict and `hub search`: fused checkpoints on the Hugging Face Hub."""

    @app.command("push")
    def push(
        run_dir: Annotated[
            str, typer.Argument(help="A fuse run folder (its model/ checkpoint) or a checkpoint folder.")
        ],
        repo: Annotated[str, typer.Option("--repo", help="The Hub repo id, org/name.")],
        private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
        revision: Annotated[str | None, typer.Option(help="Branch to commit to (created if needed).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Upload a fused checkpoint to the Hub in one commit and print its URL."""
        from fusecpath.checkpoint.hub import push as push_checkpoint

        url = push_checkpoint(run_dir, repo, private=private, revision=revision)
        if as_json:
            print_json({"repo_id": repo, "url": url})
        else:
            typer.echo(url)

    @app.command("pull")
    def pull(
        repo: Annotated[str, typer.Argument(help="The Hub repo id, org/name.")],
        revision: Annotated[str | None, typer.Option(help="Branch, tag or commit.")] = None,
        out: Annotated[
            str | None, typer.Option(help="Also copy the verified checkpoint to this folder.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Download a fused checkpoint into the HF cache, verify it, and list the FMs it needs."""
        from fusecpath.checkpoint.hub import pull as pull_checkpoint

        report = pull_checkpoint(repo, revision=revision, out=out)
        if as_json:
            print_json(report)
            return
        typer.echo(
            f"{repo}@{report['commit'][:12]}: {report['files']} files verified in {report['out'] or report['directory']}"
        )
        for fm in report["fms"]:
            state = "ok" if fm["ok"] else fm["problem"]
            typer.echo(f"  {fm['name']} ({fm['level']}, plugin {fm['plugin']}): {state}")

    @app.command("predict")
    def predict(
        inputs: Annotated[list[str], typer.Argument(help="Slide files and/or folders of slides.")],
        model: Annotated[
            str, typer.Option("--model", help="A fuse run folder, a checkpoint folder or org/name.")
        ],
        out: Annotated[
            str, typer.Option("--out", help="Folder for predictions.csv, heatmaps/ and features/.")
        ],
        revision: Annotated[str | None, typer.Option(help="Branch, tag or commit of a Hub model.")] = None,
        mpp: Annotated[float | None, typer.Option(help="µm/px for slides whose file does not say.")] = None,
        workers: Annotated[int, typer.Option(help="Patch-reading worker processes.")] = 0,
        device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
        shard: Annotated[
            str | None, typer.Option(help="Only shard I/N of the slides (job arrays), e.g. 0/8.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Predict slides with a fused model: predictions.csv plus an attention heatmap (PNG, GeoJSON) a slide."""
        from fusecpath.inference import predict as predict_slides

        result = predict_slides(
            inputs,
            model,
            out,
            revision=revision,
            mpp=mpp,
            workers=workers,
            device=device,
            progress=not as_json and sys.stderr.isatty(),
            shard=shard,
        )
        if as_json:
            print_json(result.to_dict())
        else:
            for row in result.rows:
                shown = {k: v for k, v in row.items() if k not in ("slide", "heatmap", "geojson", "slide_id")}
                typer.echo(
                    f"{row['slide_id']}: "
                    + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
                    )
                )
            typer.echo(f"{len(result.rows)} predicted, {len(result.failures)} failed -> {result.out}")
        for _, message in result.failures:
            typer.echo(f"fusecpath: error: {message}", err=True)
        if result.failures:
            raise typer.Exit(1)

    hub = typer.Typer(help="Fused checkpoints on the Hugging Face Hub.", no_args_is_help=True)
    app.add_typer(hub, name="hub")

    @hub.command("search")
    def hub_search(
        query: Annotated[str | None, typer.Argument(help="Part of the repo id.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """List fused checkpoints on the Hub (tag fusecpath) with their FMs and task."""
        from fusecpath.checkpoint.hub import search

        rows = search(query)
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("repo", "task", "foundation models", "licence", "gated")
        for row in rows:
            table.add_row(
                row["id"],
                row["task"],
                ", ".join(row["fms"]),
                row["license"] or "",
                "yes" if row["gated"] else "",
            )
        console().print(table)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"fusecpath: warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    warnings.formatwarning = _format_warning
    app = build_app()
    try:
        app(args=argv, prog_name="fusecpath")
    except FusecpathError as exc:
        typer.echo(f"fusecpath: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("fusecpath: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
