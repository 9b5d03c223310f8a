"""Applications and data."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import click

from xwpy import archive, protocol
from xwpy.client.context import JSON_HELP, Duration, Settings, Size, emit, pass_settings, table


def upload_bundle(client, path: Path, access: str) -> str:
    """A directory becomes a canonical archive; a file is uploaded as it is."""
    if path.is_dir():
        buf = io.BytesIO()
        archive.write_dir(path, buf)
        return client.put_bytes(buf.getvalue(), access=access, name=f"{path.name}.tar")["sha256"]
    return client.put_data(path, access=access, name=path.name)["sha256"]


def register(cli: click.Group) -> None:
    @cli.group("app")
    def app():
        """Register and list applications."""

    @app.command("register")
    @click.argument("name")
    @click.argument("command", nargs=-1, required=True)
    @click.option("--bundle", type=click.Path(exists=True, path_type=Path),
                  help="A directory or archive unpacked in each job's directory.")
    @click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="A container image archive (podman/docker save, skopeo copy oci-archive:) the command runs in.")
    @click.option("--platform", default="any", show_default=True,
                  help="What the bundle is built for (linux-x86_64, darwin-arm64, ...); an image's own by default.")
    @click.option("--access", type=click.Choice(["private", "group", "public"]), default="public", show_default=True,
                  help="Who may run jobs of this app.")
    @click.option("--replication", type=click.IntRange(1, 32), default=3, show_default=True,
                  help="Replicas of each job, each on a distinct host.")
    @click.option("--quorum", type=click.IntRange(1, 32), default=2, show_default=True,
                  help="Agreeing results that certify a job.")
    @click.option("--validator", default="quorum", show_default=True, help="'quorum' or 'verifier:NAME'.")
    @click.option("--adaptive", is_flag=True,
                  help="Adaptive replication: a trusted host's result may certify alone (spot-checked).")
    @click.option("--comparator", metavar="NAME",
                  help="Results agree when this comparator finds them equivalent, not only when identical: "
                       "'numeric' (numbers in the outputs equal within --rtol/--atol), or an xwpy.comparators entry point.")
    @click.option("--rtol", type=click.FloatRange(0, 1), help="With --comparator numeric: relative tolerance (default 1e-9).")
    @click.option("--atol", type=click.FloatRange(0), help="With --comparator numeric: absolute tolerance (default 0).")
    @click.option("--homogeneous", is_flag=True,
                  help="Homogeneous redundancy: the replicas of a job run on hosts of one platform only.")
    @click.option("--network", is_flag=True,
                  help="Its jobs need the network: they go only to workers whose volunteer allows it (--allow-network).")
    @click.option("--deadline", type=Duration(), default=f"{protocol.DEFAULT_DEADLINE // 3600}h", show_default=True,
                  help="How long a replica may take, its host asleep or offline included (6h, 2d): a host back "
                       "before then resumes it and its result counts; meanwhile an extra replica may run elsewhere.")
    @click.option("--checkpoints", type=click.Choice(protocol.CHECKPOINTS), default="keep", show_default=True,
                  help="What its jobs write in checkpoint/ (xwpy.checkpoint): kept on their host, where a job resumes "
                       "after a restart; 'upload' also sends it, so that a replica moved to another host resumes there.")
    @click.option("--wall", "wall_seconds", type=Duration(), default="1h", show_default=True,
                  help="Wall-clock limit of one replica (90s, 30m, 2h).")
    @click.option("--cpu", "cpu_seconds", type=Duration(), default="1h", show_default=True,
                  help="CPU time limit of one replica (90s, 30m, 2h).")
    @click.option("--memory", "memory_bytes", type=Size(), default="1G", show_default=True,
                  help="Memory a job may use (address space), e.g. 512M, 4G.")
    @click.option("--output", "output_bytes", type=Size(minimum=1), default="256M", show_default=True,
                  help="Largest result one replica may write (512K, 256M, 2GiB).")
    @click.option("--processes", type=click.IntRange(1, protocol.MAX_PROCESSES), default=64, show_default=True,
                  help="Most processes a replica may run at once.")
    @click.option("--cores", type=click.IntRange(1, protocol.MAX_CORES), default=1, show_default=True,
                  help="Cores a job occupies: a host runs jobs side by side only while their cores fit its offer.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def app_register(s: Settings, name, command, bundle, image, platform, access, replication, quorum, validator, adaptive,
                     network, deadline, checkpoints, wall_seconds, cpu_seconds, memory_bytes, output_bytes, processes, cores, as_json,
                     comparator, rtol, atol, homogeneous):
        """Register NAME running COMMAND (after --): `{python}` is the worker's Python, `{args}` the
        job's arguments.  Example: xwpy app register primes --bundle ./primes -- '{python}' primes.py '{args}'

        With --image, COMMAND runs inside the image (after its Entrypoint, with its Env and WorkingDir):
        xwpy app register tool --image tool.tar -- /bin/tool '{args}'"""
        if image and bundle:
            raise click.UsageError("--image and --bundle exclude each other: put the bundle's files in the image")
        if (rtol is not None or atol is not None) and comparator is None:
            raise click.UsageError("--rtol and --atol are a comparator's tolerances: give --comparator numeric")
        client = s.client()
        sha = upload_bundle(client, bundle, access) if bundle else None
        image_sha = client.put_data(image, access=access, name=image.name)["sha256"] if image else None
        info = client.register_app(
            name=name, command=list(command), bundle=sha, image=image_sha, platform=platform, access=access,
            validator=validator, replication=replication, quorum=quorum, adaptive=adaptive, network=network or None,
            deadline=deadline, checkpoints=checkpoints, comparator=comparator, rtol=rtol, atol=atol,
            homogeneous=homogeneous or None,
            limits={"wall_seconds": wall_seconds, "cpu_seconds": cpu_seconds, "memory_bytes": memory_bytes,
                    "output_bytes": output_bytes, "processes": processes, "cores": cores},
        )
        emit(info, as_json, f"app {info['name']} registered (id {info['id']})")

    @app.command("version")
    @click.argument("name")
    @click.option("--platform", required=True, help="linux-x86_64, linux-aarch64, darwin-arm64, windows-x86_64, or any.")
    @click.option("--bundle", type=click.Path(exists=True, path_type=Path), help="This platform's bundle.")
    @click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="This platform's image.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def app_version(s: Settings, name, platform, bundle, image, as_json):
        """Add NAME's build for another platform: workers of that platform get it."""
        if (bundle is None) == (image is None):
            raise click.UsageError("give --bundle or --image (one of them)")
        client = s.client()
        access = client.app(name)["access"]
        sha = upload_bundle(client, bundle, access) if bundle else None
        image_sha = client.put_data(image, access=access, name=image.name)["sha256"] if image else None
        info = client.add_version(name, platform=platform, bundle=sha, image=image_sha)
        emit(info, as_json, f"app {name}: versions for {', '.join(v['platform'] for v in info['versions'])}")

    @app.command("list")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def app_list(s: Settings, as_json):
        rows = s.client().apps()
        emit(rows, as_json, table(
            [[a["name"], a["owner"], a["access"], a["validator"], f"{a['quorum']}/{a['replication']}",
              ",".join(v["platform"] + ("(image)" if v.get("image") else "") for v in a.get("versions", ())),
              " ".join(a["command"])]
             for a in rows], ["NAME", "OWNER", "ACCESS", "VALIDATOR", "QUORUM", "PLATFORMS", "COMMAND"]))

    @app.command("show")
    @click.argument("name")
    @pass_settings
    def app_show(s: Settings, name):
        emit(s.client().app(name), True)

    @cli.group("image")
    def image():
        """Build and check container image archives (no registry, no container engine needed)."""

    @image.command("build")
    @click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.argument("command", nargs=-1)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="The archive to write (oci-archive, as skopeo writes it).")
    @click.option("--entrypoint", multiple=True, help="Entrypoint argv, one option per word.")
    @click.option("--env", multiple=True, help="NAME=VALUE in the image's environment (repeatable).")
    @click.option("--workdir", default="", help="Absolute directory the command starts in.")
    @click.option("--format", "fmt", type=click.Choice(["oci-archive", "docker-archive"]), default="oci-archive",
                  show_default=True, help="oci-archive (skopeo, podman) or docker-archive (docker save).")
    @click.option("--add-program", "programs", multiple=True,
                  help="Copy this program (a path, or a name on PATH) into ROOT's bin/ with the libraries it "
                       "loads (repeatable).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    def image_build(root, command, output, entrypoint, env, workdir, fmt, programs, as_json):
        """Write an image of directory ROOT (one layer) running COMMAND (after --) by default."""
        from xwpy.image import build, inspect

        for program in programs:
            found = program if os.sep in program else shutil.which(program)
            if not found or not os.path.isfile(found):
                raise click.BadParameter(f"{program!r}: no such program", param_hint="--add-program")
            build.add_program(root, found)
        for item in env:
            if "=" not in item:
                raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--env")
        if workdir and not workdir.startswith("/"):
            raise click.BadParameter(f"{workdir!r} is not an absolute path", param_hint="--workdir")
        build.write(output, [build.layer_from_dir(root)], entrypoint=list(entrypoint) or None, cmd=list(command) or None,
                    env=["PATH=/usr/local/bin:/usr/bin:/bin", *env], workdir=workdir, fmt=fmt)
        img = inspect(output)
        emit({"archive": str(output), "format": img.format, **img.to_json(), "tags": list(img.tags)}, as_json,
             f"{output}: image {img.id[:19]}, {img.files} files, {img.unpacked_bytes} bytes, {img.platform}")

    @image.command("inspect")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def image_inspect(path):
        """Check an image archive as the coordinator will (digests, sizes, entries); print its config."""
        from xwpy.image import ImageError, inspect

        try:
            img = inspect(path)
        except ImageError as e:
            raise click.ClickException(f"{path}: {e}") from None
        emit({"format": img.format, **img.to_json(), "tags": list(img.tags)}, True)

    @cli.group("data")
    def data():
        """Upload and download data (content-addressed by sha256)."""

    @data.command("put")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--access", type=click.Choice(["private", "group", "public"]), default="private", show_default=True,
                  help="Who may read the file (and use it as a job input).")
    @click.option("--name", default="", help="A label to find it by in `xwpy data list`.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def data_put(s: Settings, path, access, name, as_json):
        """Upload a file; prints its sha256."""
        info = s.client().put_data(path, access=access, name=name or _safe_name(path.name))
        emit(info, as_json, info["sha256"])

    @data.command("get")
    @click.argument("sha256")
    @click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
    @pass_settings
    def data_get(s: Settings, sha256, dest):
        """Download data by sha256 (verified) to DEST."""
        size = s.client().get_data(sha256, dest)
        click.echo(f"{dest}: {size} bytes")

    @data.command("list")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def data_list(s: Settings, as_json):
        rows = s.client().data()
        emit(rows, as_json, table([[d["sha256"], d["size"], d["access"], d["name"]] for d in rows],
                                  ["SHA256", "SIZE", "ACCESS", "NAME"]))


def _safe_name(name: str) -> str:
    from xwpy.protocol import FILE_RE

    return name if FILE_RE.fullmatch(name) else ""
