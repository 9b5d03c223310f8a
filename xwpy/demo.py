"""``xwpy demo``: a whole grid on this machine, end to end, on the embedded defaults.

A site with its coordinator, three volunteers' workers, a scientist who registers an app (shipped
as a bundle) and submits a batch; every job runs as replicas on distinct hosts, and only results
that a quorum agrees on are certified and printed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from xwpy import archive
from xwpy.lifecycle import JobStatus, Validation
from xwpy.client.commands.catalog import upload_bundle
from xwpy.client.context import progress
from xwpy.localgrid import LocalGrid, wait_for

APPS = Path(__file__).resolve().parent / "apps"


def say(text: str) -> None:
    click.secho(text, fg="cyan", bold=True)


def vanity_search(client, prefix: str) -> None:
    """Split-key vanity search on the grid: the workers never see the key that spends it."""
    from xwpy.apps.vanitygen import combine
    from xwpy.apps.vanitygen.cli import _progress_printer
    from xwpy.apps.vanitygen.grid import GridBackend, ensure_app, in_flight
    from xwpy.apps.vanitygen.search import SearchSpec, plan_search, run_search

    q, pub = combine.keygen()
    say(f"7. alice orders a vanity address starting with {prefix!r}, split-key: the grid gets only her public key")
    ensure_app(client)
    plan = plan_search(SearchSpec(prefix, pubkey=pub), keys_per_second=200_000, min_unit_seconds=1, max_unit_seconds=4)
    t0 = time.monotonic()
    found = run_search(plan, GridBackend(client, "demo-vanity"), parallel=in_flight(client)[0],
                       on_progress=_progress_printer())
    out = combine.combine_record(found, q)
    click.echo("")
    say(f"8. found by the grid in {time.monotonic() - t0:.1f} s; alice combines the partial key with her secret:")
    click.echo(f"   address:           {out.address}")
    click.echo(f"   private key (WIF): {out.wif}")


def image_app(client, tmp: Path, jobs: int = 6) -> None:
    """A tool shipped as a container image, built here from the machine's busybox (no registry,
    no container engine): each job counts the words of a text in that image's root."""
    from xwpy.image import build

    say("6. alice ships a tool as a container image (built from this machine's busybox, no registry)")
    image = tmp / "wordcount.tar"
    build.write(image, [build.layer_from_dir(build.busybox_root(tmp / "root"))], workdir="/work",
                env=["PATH=/bin"], entrypoint=["/bin/sh", "-c"])
    client.register_app(name="wordcount", command=["wc -w < text.txt"],
                        image=client.put_data(image, access="public", name="wordcount.tar")["sha256"],
                        replication=2, quorum=2)
    texts = [" ".join(["grid"] * (10 * (i + 1))) for i in range(jobs)]
    specs = []
    for i, text in enumerate(texts):
        path = tmp / f"text{i}.txt"
        path.write_text(text + "\n")
        sha = client.put_data(path, name=path.name)["sha256"]
        specs.append({"app": "wordcount", "args": [], "inputs": [{"name": "text.txt", "sha256": sha}]})
    ids = client.submit(specs, batch="demo-image")
    wait_for(lambda: all(JobStatus(client.job(j)["status"]).final for j in ids), 300, "the image jobs")
    for jid, text in zip(ids, texts):
        job = client.job(jid)
        if job["status"] != JobStatus.COMPLETED:
            click.echo(f"   job {jid}: {job['status']} {job.get('why') or job['error'] or ''}")
            continue
        dest = tmp / f"{jid}.tar"
        client.result(jid, dest)
        words = archive.read_files(dest.read_bytes())["stdout"].decode().strip()
        click.echo(f"   job {jid:3}: {words:>4} words (expected {len(text.split())}), run in the image on "
                   f"{len({r['host_id'] for r in job['replicas']})} hosts")


def run_demo(root: Path, workers: int = 3, jobs: int = 12, keep: bool = False, prefix: str = "1xw",
             chain: bool = True) -> int:
    grid = LocalGrid(root, heartbeat=1.0)
    if chain:  # the coordinator's oracle, on its embedded chain (step 8 on)
        grid.enable_oracle(rpc_port=0, poll_seconds=0.2)
    try:
        say(f"1. site created in {grid.cfg.dir}; starting the coordinator")
        grid.start_coordinator()
        admin = grid.client()
        alice = grid.client(grid.user("alice"))
        say(f"2. {workers} volunteers start their workers")
        for i in range(workers):
            grid.start_worker(f"worker{i + 1}", grid.user(f"volunteer{i + 1}", "worker"))
        wait_for(lambda: len(admin.hosts()) == workers, 60, "the workers to register")
        say("3. alice registers the 'primes' app (bundle: xwpy/apps/primes) with replication 3, quorum 2")
        bundle = upload_bundle(alice, APPS / "primes", "public")
        alice.register_app(name="primes", command=["{python}", "primes.py", "{args}"], bundle=bundle,
                           replication=3, quorum=2)
        step = 250_000
        ranges = [(i * step, (i + 1) * step) for i in range(jobs)]
        say(f"4. alice submits a batch of {jobs} jobs: primes in [0, {jobs * step:,})")
        t0 = time.monotonic()
        ids = alice.submit([{"app": "primes", "args": [str(lo), str(hi)]} for lo, hi in ranges], batch="demo")
        with progress(len(ids), "   certified") as bar:
            shown = 0
            while shown < len(ids):
                counts = alice.summary("demo")
                done = sum(counts[s.value] for s in JobStatus if s.final)
                bar.update(done - shown)
                shown = done
                if shown < len(ids):
                    time.sleep(0.3)  # progress display refresh
        say(f"5. certified results ({time.monotonic() - t0:.1f} s):")
        total = 0
        with tempfile.TemporaryDirectory() as tmp:
            for jid in ids:
                job = alice.job(jid)
                if job["status"] != JobStatus.COMPLETED:
                    click.echo(f"   job {jid}: {job['status']} {job['error'] or ''}")
                    continue
                dest = Path(tmp) / f"{jid}.tar"
                alice.result(jid, dest)
                lo, hi, count = archive.read_files(dest.read_bytes())["stdout"].split()
                total += int(count)
                agree = sum(r["validation"] == Validation.VALID.value for r in job["replicas"])
                hosts = len({r["host_id"] for r in job["replicas"]})
                click.echo(f"   job {jid:3}: {int(count):6} primes in [{int(lo):>9,}, {int(hi):>9,})"
                           f"   {agree} agreeing replicas on {hosts} hosts")
        click.echo(f"   total: {total:,} primes below {jobs * step:,}")
        with tempfile.TemporaryDirectory() as tmp:
            image_app(alice, Path(tmp))
        vanity_search(alice, prefix)
        if chain:
            from xwpy.demo_chain import order_on_chain

            order_on_chain(grid, prefix, step=9)
        return 0
    finally:
        grid.close()
        if keep:
            click.echo(f"logs kept in {root}")
