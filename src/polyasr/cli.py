"""The `polyasr` command line: transcribe files, list models."""

from __future__ import annotations

import json
import os
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import click

from .batch import ENGINES, ModelSpec, run_batch
from .errors import PolyasrError
from .formats import WRITERS, formats_for, output_stems, write_atomic

DEFAULT_MODEL = "whisper-small"


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s of audio"),
        TimeRemainingColumn(),
        transient=True,
        disable=not enabled or not sys.stderr.isatty(),
        console=_stderr_console(),
    )


def _advance(bar, job, progress) -> None:
    bar.update(job, completed=progress.seconds_done, total=progress.seconds_total)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


VAD_FLAGS = [
    ("--vad-threshold", "threshold", "Speech probability at which speech starts (lower: quieter)."),
    ("--vad-min-speech", "min_speech_s", "Seconds: shorter bursts of speech are dropped."),
    ("--vad-min-silence", "min_silence_s", "Seconds of pause that end a speech region."),
    ("--vad-pad", "speech_pad_s", "Seconds added on both sides of each speech region."),
    ("--vad-veto", "veto", "Audio between regions is skipped only if no frame reaches this."),
]


def vad_options(command):
    """The `VadOptions` fields as options of `command` (passed to it under their names)."""
    from .types import VadOptions

    defaults = VadOptions()
    for flag, field, text in reversed(VAD_FLAGS):
        default = getattr(defaults, field)
        kind = click.FloatRange(0, 1)
        if field == "threshold":
            kind = click.FloatRange(0, 1, min_open=True, max_open=True)
        elif field != "veto":
            kind = click.FloatRange(min=0)
        command = click.option(
            flag, field, type=kind, default=default, show_default=True, help=text
        )(command)
    return command


def output_options(
    default_format: str,
    required: bool = False,
    help: str = "Write FILE_STEM.FORMAT files here instead of printing to stdout.",
):
    """`--format` (default `default_format`) and `--output-dir`, passed as `fmt`, `output_dir`."""

    def decorate(command):
        command = click.option(
            "-o",
            "--output-dir",
            type=click.Path(file_okay=False, path_type=Path),
            required=required,
            help=help,
        )(command)
        return click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice([*WRITERS, "all"]),
            default=default_format,
            show_default=True,
        )(command)

    return decorate


def speaker_options(command):
    """The `DiarizeOptions` a user sets, as options of `command` (passed under their names)."""
    from .types import EMBEDDINGS, SPEAKER_MODES

    options = [
        click.option(
            "--speaker-mode",
            "mode",
            type=click.Choice(SPEAKER_MODES),
            default="auto",
            show_default=True,
            help="channel: each channel of a stereo file is one speaker; cluster: find the "
            "speakers in the downmix; auto: channel mode for two distinct channels.",
        ),
        click.option("--num-speakers", type=click.IntRange(min=1), help="Known speaker count."),
        click.option("--min-speakers", type=click.IntRange(min=1)),
        click.option("--max-speakers", type=click.IntRange(min=1)),
        click.option(
            "--embedding",
            type=click.Choice(EMBEDDINGS),
            default="campplus",
            show_default=True,
            help="Speaker embedding: CAM++ or the mean log-mel baseline.",
        ),
        click.option(
            "--segmentation-model",
            default=None,
            help="Local pyannote segmentation-3.0 pytorch_model.bin "
            "(default: $POLYASR_SEGMENTATION_MODEL, else downloaded; gated: needs HF_TOKEN).",
        ),
        click.option(
            "--embedding-model",
            default=None,
            help="Local CAM++ campplus_cn_en_common.pt "
            "(default: $POLYASR_EMBEDDING_MODEL, else downloaded from ModelScope).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _split(settings: dict, kind: type) -> dict:
    """The entries of `settings` that are fields of the dataclass `kind` (removed from it)."""
    from dataclasses import fields

    return {f.name: settings.pop(f.name) for f in fields(kind) if f.name in settings}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="polyasr")
def cli() -> None:
    """Local speech recognition: Whisper and more, natively in PyTorch."""


DEVICE_OPTION = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True
)
DTYPE_OPTION = click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "float16", "bfloat16"]),
    default="auto",
    show_default=True,
    help="Compute precision; auto = float16 on CUDA, float32 elsewhere.",
)
TRANSCRIPTION_OPTIONS = [
    click.option(
        "-m",
        "--model",
        default=DEFAULT_MODEL,
        show_default=True,
        help="Short name (whisper-base), hub id (openai/whisper-base) or local directory.",
    ),
    click.option(
        "-l",
        "--language",
        default=None,
        help="Language code such as en or ru; detected if omitted.",
    ),
    click.option(
        "--task",
        type=click.Choice(["transcribe", "translate"]),
        default="transcribe",
        show_default=True,
    ),
    DEVICE_OPTION,
    DTYPE_OPTION,
    click.option(
        "--beam-size",
        type=click.IntRange(min=1),
        default=5,
        show_default=True,
        help="1 is greedy decoding (fastest).",
    ),
    click.option(
        "--temperature",
        "temperatures",
        type=click.FloatRange(min=0),
        multiple=True,
        help="Temperature schedule for fallback (repeat the option); default 0 0.2 ... 1.0.",
    ),
    click.option("--word-timestamps/--no-word-timestamps", default=False, show_default=True),
    click.option(
        "--initial-prompt",
        "--context",
        "initial_prompt",
        default=None,
        help="Text that primes vocabulary and style (Whisper's prompt; Qwen3-ASR's context: hot "
        "words, names, domain text).",
    ),
    click.option(
        "--condition-on-previous-text/--no-condition-on-previous-text",
        default=True,
        show_default=True,
    ),
    click.option(
        "--vad/--no-vad",
        default=True,
        show_default=True,
        help="Cut at pauses found by Silero VAD and decode the pieces in batches; --no-vad "
        "decodes 30 s windows in sequence (Whisper) or fixed windows (other families).",
    ),
    vad_options,
    click.option(
        "--diarize/--no-diarize",
        default=False,
        show_default=True,
        help="Who spoke when: a speaker on every segment and word (see the speaker options).",
    ),
    speaker_options,
    click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
]


def transcription_options(command):
    """The model, output format and `TranscribeOptions` options, shared by every command that
    transcribes (passed to it under their names)."""
    for option in reversed(TRANSCRIPTION_OPTIONS):
        command = option(command)
    return command


def _transcribe_options(settings: dict[str, Any]):
    """The `TranscribeOptions` that the `transcription_options` in `settings` ask for (their
    entries are removed from it)."""
    import polyasr

    vad_settings = _split(settings, polyasr.VadOptions)
    speakers = polyasr.DiarizeOptions(**_split(settings, polyasr.DiarizeOptions))
    temperatures = settings.pop("temperatures")
    return polyasr.TranscribeOptions(
        language=settings.pop("language"),
        task=settings.pop("task"),
        beam_size=settings.pop("beam_size"),
        word_timestamps=settings.pop("word_timestamps"),
        initial_prompt=settings.pop("initial_prompt"),
        condition_on_previous_text=settings.pop("condition_on_previous_text"),
        vad=settings.pop("vad"),
        vad_options=polyasr.VadOptions(**vad_settings),
        diarize=speakers if settings.pop("diarize") else None,
        batch_size=settings.pop("batch_size"),
        **({"temperatures": tuple(temperatures)} if temperatures else {}),
    )


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@transcription_options
@output_options("txt")
def transcribe(
    files: tuple[Path, ...],
    model: str,
    device: str,
    dtype: str,
    fmt: str,
    output_dir: Path | None,
    quiet: bool,
    **settings: Any,
) -> None:
    """Transcribe audio or video FILES (wav, flac, mp3, ogg/opus, m4a, mp4, mkv, ...).

    All files go through one batched call: pieces of several files share batches, a file that
    fails is reported on one line and the others are still transcribed and written.
    """
    import polyasr

    formats = formats_for(fmt, speakers=settings["diarize"])
    if len(formats) > 1 and output_dir is None:
        raise click.UsageError("--format all needs --output-dir")
    options = _transcribe_options(settings)
    asr = polyasr.load(model, device=device, dtype=None if dtype == "auto" else dtype)
    files = tuple(dict.fromkeys(files))  # the same file twice is transcribed once
    stems = output_stems(list(files))
    failures = 0
    with _progress_bar(not quiet) as bar:
        job = bar.add_task(f"{len(files)} file{'s' * (len(files) > 1)}", total=None)
        for index, result in asr.transcribe_stream(
            files, options, progress=partial(_advance, bar, job)
        ):
            path = files[index]
            if isinstance(result, PolyasrError):
                failures += 1
                click.echo(f"error: {result}", err=True)
            elif output_dir is not None:
                failures += not _write(output_dir, stems[index], formats, result)
            else:
                _print(path, formats, result, several=len(files) > 1)
    if failures:
        raise SystemExit(1)


def _write(output_dir: Path, stem: str, formats: list[str], result) -> bool:
    """Write `result` in every format; False (after one error line) when a write fails."""
    for name in formats:
        target = output_dir / f"{stem}.{name}"
        try:
            write_atomic(target, WRITERS[name](result))
        except OSError as exc:
            click.echo(f"error: cannot write {target}: {exc.strerror or exc}", err=True)
            return False
    return True


def _print(path: Path, formats: list[str], result, several: bool) -> None:
    """Print `result` to stdout; with several files, a header (or a "file" field in JSON)."""
    for name in formats:
        if name == "json" and several:
            record = {"file": str(path), **result.to_dict()}
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        if several:
            click.echo(f"==> {path} <==")
        click.echo(WRITERS[name](result), nl=False)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@transcription_options
@output_options(
    "txt", required=True, help="Write STEM.FORMAT per input, resume records and summary.json here."
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="local: one model in this process; ray: a pool of Ray actors (pip install "
    "'polyasr[ray]').",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster to connect to (e.g. ray://head:10001 or auto); default: start a local one.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Ray actors, one model each (default: one per GPU, else one per two CPUs).",
)
def batch(
    inputs: tuple[str, ...],
    model: str,
    device: str,
    dtype: str,
    fmt: str,
    output_dir: Path,
    quiet: bool,
    engine: str,
    address: str | None,
    workers: int | None,
    **settings: Any,
) -> None:
    """Transcribe many INPUTS into --output-dir, resumably: files, folders (recursively),
    globs, and manifests (.jsonl with a "path" field, .csv with a "path" column).

    A re-run skips the inputs already finished with the same model and options from the same
    version of the file. A failing input is listed in the summary and never stops the others
    (exit code 1 if any failed).
    """
    import itertools

    if engine != "ray" and (address is not None or workers is not None):
        raise click.UsageError("--address and --workers need --engine ray")
    formats = formats_for(fmt, speakers=settings["diarize"])
    options = _transcribe_options(settings)
    spec = ModelSpec(model, device, None if dtype == "auto" else dtype)
    with _progress_bar(not quiet) as bar:
        job = bar.add_task("0 files", total=None)
        finished = itertools.count(1)

        def count(source: str, result: Any) -> None:
            bar.update(job, description=f"{next(finished)} files")

        summary = run_batch(
            inputs,
            output_dir,
            spec,
            options,
            formats,
            engine=engine,
            address=address,
            workers=workers,
            progress=partial(_advance, bar, job),
            on_result=count,
        )
    for line in summary.lines():
        click.echo(line, err=line.startswith("failed:"))
    if summary.failed:
        raise SystemExit(1)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_options("rttm")
@speaker_options
def diarize(files: tuple[Path, ...], fmt: str, output_dir: Path | None, **settings: Any) -> None:
    """Who spoke when in audio or video FILES: speaker turns, without transcribing."""
    import polyasr

    formats = formats_for(fmt, speakers=True)
    if len(formats) > 1 and output_dir is None:
        raise click.UsageError("--format all needs --output-dir")
    options = polyasr.DiarizeOptions(**settings)
    files = tuple(dict.fromkeys(files))
    stems = output_stems(list(files))
    failures = 0
    for path, stem in zip(files, stems):
        try:
            turns = polyasr.diarize(path, options)
        except PolyasrError as exc:
            failures += 1
            click.echo(f"error: {exc}", err=True)
            continue
        result = polyasr.Transcript("", [], turns=turns, source=str(path))
        if output_dir is not None:
            failures += not _write(output_dir, stem, formats, result)
        else:
            _print(path, formats, result, several=len(files) > 1)
    if failures:
        raise SystemExit(1)


@cli.command()
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Model to serve (repeat for several): short name, hub id, local path, or ID=PATH to "
    "name it; clients pick it by id (a path's folder name).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    envvar="POLYASR_API_KEY",
    default=None,
    help="Require 'Authorization: Bearer KEY' on every route but /health "
    "(default: $POLYASR_API_KEY, else open).",
)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Larger uploads get 413 before their body is read.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Requests waiting per model; more get 503.",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Requests transcribed together in one batch.",
)
@click.option(
    "--batch-wait-ms",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="How long a request waits for others to batch with.",
)
@DEVICE_OPTION
@DTYPE_OPTION
@click.option("--beam-size", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@speaker_options
def serve(
    models: tuple[str, ...],
    host: str,
    port: int,
    api_key: str | None,
    max_upload_mb: int,
    max_queue: int,
    max_batch: int,
    batch_wait_ms: float,
    device: str,
    dtype: str,
    beam_size: int,
    batch_size: int,
    **settings: Any,
) -> None:
    """Serve MODELs over HTTP: OpenAI's /v1/audio/transcriptions and /v1/audio/translations,
    /v1/models, /health, and a web page at /."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "the server needs its extra: pip install 'polyasr[server]'"
        ) from None
    import polyasr
    from polyasr.server.config import ServerConfig
    from polyasr.server.launch import serve as run_server

    config = ServerConfig(
        api_key=api_key or None,
        max_upload_bytes=max_upload_mb << 20,
        max_queue=max_queue,
        max_batch=max_batch,
        batch_wait_s=batch_wait_ms / 1000,
        options=polyasr.TranscribeOptions(beam_size=beam_size, batch_size=batch_size),
        speakers=polyasr.DiarizeOptions(**settings),
    )
    run_server(list(models), config, host, port, device, None if dtype == "auto" else dtype)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    help="A model to measure (repeat the option to compare several, side by side).",
)
@click.option(
    "--reference",
    default=None,
    help="The correct transcript (text, or @FILE to read it) for a WER column.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Transcriptions per model; the RTF is the median of all but the first.",
)
@click.option("-l", "--language", default=None, help="Language code; detected if omitted.")
@click.option("--beam-size", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--vad/--no-vad", default=True, show_default=True)
@DEVICE_OPTION
@DTYPE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench(
    file: Path,
    models: tuple[str, ...],
    reference: str | None,
    rounds: int,
    language: str | None,
    beam_size: int,
    vad: bool,
    device: str,
    dtype: str,
    as_json: bool,
) -> None:
    """Measure models on one recording, each in a fresh process: real-time factor, cold start
    (process start to first text), load time, peak memory, tokens/s and, with --reference, WER.
    """
    from . import bench as measuring
    from .audio import load_audio

    load_audio(file)  # a bad input fails here, once, not in every model's process
    if reference is not None and reference.startswith("@"):
        try:
            reference = Path(reference[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolyasrError(f"cannot read {reference[1:]}: {exc.strerror or exc}") from None
    options = {"language": language, "beam_size": beam_size, "vad": vad}
    results, failures = [], 0
    for model in models:
        try:
            results.append(
                measuring.bench(
                    file,
                    model,
                    rounds=rounds,
                    reference=reference,
                    options=options,
                    device=device,
                    dtype=None if dtype == "auto" else dtype,
                )
            )
        except PolyasrError as exc:
            failures += 1
            click.echo(f"error: {exc}", err=True)
    if as_json:
        click.echo(measuring.as_json(results), nl=False)
    elif results:
        header, rows = measuring.table_rows(results)
        widths = [max(len(c) for c in column) for column in zip(header, *rows)]
        for line in [header, *rows]:
            click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        click.echo(f"{file}: {results[0].audio_s:.1f} s of audio, {rounds} round(s) per model")
    if failures:
        raise SystemExit(1)


@cli.command()
@click.argument("model")
@click.option(
    "--qtype",
    type=click.Choice(["q8_0", "q4_0", "q4_k", "f16", "f32"]),
    default="q8_0",
    show_default=True,
    help="Type of the large weight matrices (norms and biases stay f32, small matrices f16).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def quantize(model: str, qtype: str, output: Path) -> None:
    """Write MODEL (short name, hub id or local path) as one self-contained GGUF file, which
    `--model FILE.gguf` and `polyasr.load` read like the original."""
    from .models.gguf import write_gguf
    from .registry import read_checkpoint, resolve_directory

    directory, name = resolve_directory(model)
    family, checkpoint = read_checkpoint(directory, dense=True)
    try:
        counts = write_gguf(checkpoint, qtype, output, name)
    except OSError as exc:
        raise PolyasrError(f"cannot write {output}: {exc.strerror or exc}") from None
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    size = output.stat().st_size
    click.echo(f"{output}: {family.name} model {name!r}, {_size(size)} ({kinds} tensors)")


@cli.command("models")
def list_models() -> None:
    """List known model names, whether their hub layout is verified, and the models already
    downloaded."""
    from .registry import MODELS

    cached = _cached_repos()
    click.echo(f"{'name':<26} {'hub id':<34} {'verified':<9} downloaded")
    notes: dict[str, list[str]] = {}
    for name, model in MODELS.items():
        size = cached.get(model.repo.partition("@")[0])
        verified = "yes" if model.verified else "no"
        click.echo(
            f"{name:<26} {model.repo:<34} {verified:<9} {_size(size) if size is not None else '-'}"
        )
        if model.uncertain:
            notes.setdefault(model.uncertain, []).append(name)
    for model in MODELS.values():
        cached.pop(model.repo.partition("@")[0], None)
    if notes:
        click.echo("\nnot verified (loaded from the layout public evidence points to):")
        for note, names in notes.items():
            click.echo(f"  {', '.join(names)}: {note}")
    if cached:
        click.echo("\nother models in the Hugging Face cache:")
        for repo, size in sorted(cached.items()):
            click.echo(f"  {repo:<58} {_size(size)}")


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _cached_repos() -> dict[str, int]:
    """Size on disk of each model repository in the Hugging Face cache (none yet: empty)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return {}
    except (CorruptedCacheException, OSError) as exc:
        click.echo(f"warning: cannot read the Hugging Face cache: {exc}", err=True)
        return {}
    return {r.repo_id: r.size_on_disk for r in info.repos if r.repo_type == "model"}


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr and a non-zero exit code; each
    warning is one line too."""
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="polyasr", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "polyasr"
        click.echo(f"error: {exc.format_message()} (see {command} --help)", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except PolyasrError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if os.environ.get("POLYASR_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set POLYASR_DEBUG=1 for details)",
            err=True,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
