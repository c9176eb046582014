"""``tfgbench rate``: a local web page for human ratings (the paper's Table 5).

It serves the clips of the stored models on one dataset split, one at a time, shuffled per rater,
with no model name anywhere in the page or the file names, and records each rater's 1-5 scores for
intelligibility, synchronisation and authenticity into the results store: protocol
``rating/human``, measures ``intl``, ``sync``, ``auth``, one evaluator per rater (``rater:NAME``),
keyed like every other row by the model's checkpoint and settings and the clip. A rater who comes
back continues where they stopped; rating a clip again replaces the earlier scores.
``tfgbench table --paper table5`` shows mean ± std per model and the agreement between raters.
The clips are made once (the run's cached frames, or the plugin's output for models that are not
cached) under ``<workdir>/rating/``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import random
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tfgbench.errors import TfgbenchError

PROTOCOL = "rating/human"
SCALES = (("intl", "Intelligibility", "Could you tell the words from the lips alone?"),
          ("sync", "Synchronisation", "Do the lips move with the speech?"),
          ("auth", "Authenticity", "Does it look like a real video of a person talking?"))


def protocol_spec():
    from tfgbench.metrics.base import Measure, ProtocolSpec

    return ProtocolSpec(PROTOCOL, tuple(Measure(k, k.upper(), True) for k, _, _ in SCALES),
                        "human ratings 1-5 (tfgbench rate): intelligibility, synchronisation, authenticity",
                        settings={"scale": "1-5", "blind": True, "order": "shuffled per rater"})


@dataclass(frozen=True)
class Item:
    token: str
    model: tuple[str, str, str, str]
    dataset: tuple[str, str, str, str]
    sample_id: str
    video: Path


def prepare(workdir: Path, dataset: str, split: str = "test", models: list[str] | None = None, clips: int = 5,
            data_root: str | None = None, log=print) -> list[Item]:
    """The clips to rate: ``clips`` samples (the same for every model) of each stored model."""
    from tfgbench.compare import latest_runs, resolve_model
    from tfgbench.figures import load_sample
    from tfgbench.report.media import _clip, data_roots, frames_for
    from tfgbench.store import DatasetKey, Store

    path = workdir / "results.sqlite"
    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass --workdir)")
    with Store(path) as store:
        rows = [r for r in store.rows(dataset) if r.split == split and r.protocol != PROTOCOL]
        root = data_root or data_roots(store.runs()).get(dataset)
    keys = {r.model_key for r in rows}
    if models:
        chosen = [resolve_model(m, keys, latest_runs(rows), strict=False) for m in models]
        if None in chosen:
            raise TfgbenchError(f"no stored results on {dataset}/{split} for "
                                f"{', '.join(m for m, k in zip(models, chosen) if k is None)}")
    else:
        chosen = sorted(keys)
    if not chosen:
        raise TfgbenchError(f"no stored models on {dataset}/{split} in {path}")
    per_model = {k: {r.sample_id for r in rows if r.model_key == k} for k in chosen}
    ids = sorted(set.intersection(*per_model.values()))[:clips]
    dkeys = {k: next(DatasetKey(r.dataset, r.dataset_version, r.split, r.boxes) for r in rows if r.model_key == k)
             for k in chosen}
    items = []
    for sid in ids:
        ds, sample = load_sample(dataset, sid, split, root)
        for k in chosen:
            token = hashlib.sha256(repr((k, dkeys[k], sid)).encode()).hexdigest()[:16]
            video = workdir / "rating" / f"{token}.mp4"
            if not video.is_file():
                frames, _ = frames_for(k, sample, ds, workdir)
                _clip(frames, sample.audio, video)
            items.append(Item(token, k, (dkeys[k].dataset, dkeys[k].dataset_version, dkeys[k].split,
                                         dkeys[k].boxes), sid, video))
    log(f"{len(items)} clips to rate: {len(ids)} samples x {len(chosen)} models")
    return items


def order_for(items: list[Item], rater: str, seed: int = 0) -> list[Item]:
    out = list(items)
    random.Random(f"{seed}:{rater}").shuffle(out)
    return out


def record(workdir: Path, item: Item, rater: str, scores: dict[str, int]) -> None:
    from tfgbench.metrics.base import Score
    from tfgbench.store import DatasetKey, ModelKey, ProtocolResult, Store

    with Store(workdir / "results.sqlite") as store:
        store.record_protocol(protocol_spec())
        store.write_sample(ModelKey(*item.model), DatasetKey(*item.dataset), item.sample_id, None,
                           [ProtocolResult(PROTOCOL, f"rater:{rater}",
                                           {k: Score(float(v)) for k, v in scores.items()})])


def rated(workdir: Path, rater: str) -> set[tuple]:
    from tfgbench.store import Store

    with Store(workdir / "results.sqlite") as store:
        rows = store.rows(None, "protocol = ? AND evaluator_sha256 = ?", (PROTOCOL, f"rater:{rater}"))
    return {(r.model_key, r.sample_id) for r in rows}


_STYLE = ("body{font:16px system-ui,sans-serif;max-width:720px;margin:2em auto}fieldset{margin:.6em 0}"
          "label{margin-right:1em}video{width:384px;background:#000}")


def _page(body: str) -> bytes:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>tfgbench rating</title>'
            f"<style>{_STYLE}</style></head><body>{body}</body></html>").encode()


def make_handler(workdir: Path, items: list[Item], seed: int = 0) -> type[BaseHTTPRequestHandler]:
    by_token = {i.token: i for i in items}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, code: int, body: bytes, kind: str = "text/html; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            if url.path.startswith("/clip/"):
                item = by_token.get(url.path[6:].removesuffix(".mp4"))
                if item is None:
                    return self._send(404, b"no such clip", "text/plain")
                return self._video(item.video.read_bytes())
            rater = parse_qs(url.query).get("rater", [""])[0].strip()
            if not rater:
                return self._send(200, _page("<h1>Rating talking-face videos</h1><form method='get'>"
                                             "<label>Your name or initials <input name='rater' required></label> "
                                             "<button>Start</button></form>"))
            with lock:
                done = rated(workdir, rater)
            todo = [i for i in order_for(items, rater, seed) if (i.model, i.sample_id) not in done]
            if not todo:
                return self._send(200, _page(f"<h1 id='done'>Thank you</h1><p>All {len(items)} clips rated.</p>"))
            item = todo[0]
            scales = "".join(
                f"<fieldset><legend>{title}: {html.escape(q)}</legend>" + "".join(
                    f"<label><input type='radio' name='{k}' value='{v}' required> {v}</label>" for v in range(1, 6))
                + "</fieldset>" for k, title, q in SCALES)
            body = (f"<h1>Clip {len(items) - len(todo) + 1} of {len(items)}</h1>"
                    f"<video id='clip' src='/clip/{item.token}.mp4' controls playsinline></video>"
                    f"<form method='post' action='/rate'>"
                    f"<input type='hidden' name='rater' value='{html.escape(rater)}'>"
                    f"<input type='hidden' name='token' value='{item.token}'>{scales}"
                    "<button id='submit'>Save and next</button></form><p>1 = bad, 5 = excellent.</p>")
            return self._send(200, _page(body))

        def _video(self, data: bytes) -> None:
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start_text, _, end_text = rng[6:].partition("-")
                start = int(start_text or 0)
                end = min(int(end_text) if end_text else len(data) - 1, len(data) - 1)
                return self._send(206, data[start:end + 1], "video/mp4",
                                  {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"})
            return self._send(200, data, "video/mp4", {"Accept-Ranges": "bytes"})

        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            rater = form.get("rater", [""])[0].strip()
            item = by_token.get(form.get("token", [""])[0])
            try:
                scores = {k: int(form[k][0]) for k, _, _ in SCALES}
            except (KeyError, ValueError):
                scores = {}
            if not rater or item is None or len(scores) != 3 or not all(1 <= v <= 5 for v in scores.values()):
                return self._send(400, _page("<p>Incomplete rating: choose 1-5 on every scale.</p>"))
            with lock:
                record(workdir, item, rater, scores)
            from urllib.parse import quote

            self._send(303, b"", headers={"Location": f"/?rater={quote(rater)}"})

    return Handler


def serve(workdir: Path, items: list[Item], host: str = "127.0.0.1", port: int = 8765, seed: int = 0
          ) -> ThreadingHTTPServer:
    """A server (not started: call ``serve_forever``); ``port=0`` picks a free port."""
    return ThreadingHTTPServer((host, port), make_handler(workdir, items, seed))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tfgbench.cli import DEFAULT_WORKDIR

    p.description = __doc__.split("\n\n")[1]
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--models", help="comma-separated models (default: every stored one)")
    p.add_argument("--clips", type=int, default=5, help="samples per model (default: 5)")
    p.add_argument("--data-root", help="dataset folder (default: the --data-root of the recorded runs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (each rater gets an own order)")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR)


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    items = prepare(workdir, args.dataset, args.split, models, args.clips, args.data_root)
    server = serve(workdir, items, args.host, args.port, args.seed)
    print(f"rating page: http://{args.host}:{server.server_address[1]}/  (Ctrl-C to stop; ratings are saved as "
          f"they are given, in {workdir / 'results.sqlite'})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
