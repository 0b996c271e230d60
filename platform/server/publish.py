"""`plumbline publish DIR --server URL`: what rsconnect::deployAPI() does, from the shell.

Same API, same steps: find or create the app by name, upload the folder as a .tar.gz
(streamed from a temporary file), deploy it, and print the task's output as it comes.
"""

from __future__ import annotations

import argparse
import json
import re
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from plumbline.exits import CommandError, ExitCode

KEY_ENV = "PLUMBLINE_API_KEY"
SERVER_ENV = "PLUMBLINE_SERVER"


class PublishError(RuntimeError):
    pass


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Bundle DIR (plumber.R and every file beside it), upload it to a plumbline server, "
        "deploy it and follow the deploy task to its end, as rsconnect::deployAPI() does."
    )
    parser.add_argument("directory", metavar="DIR", help="the app folder, with plumber.R")
    parser.add_argument("--server", default=None, help="the server's URL")
    parser.add_argument(
        "--api-key",
        default=None,
        help="API key (better in the environment than as a flag, which other users can see "
        "in the process list)",
    )
    parser.add_argument(
        "--name", default=None, help="app name on the server (default: the folder's name)"
    )
    parser.add_argument("--title", default=None, help="app title (default: the name)")
    parser.add_argument(
        "--vanity",
        default=None,
        metavar="PATH",
        help="serve the app at this path too, such as /parity/ (its vanity path), set before "
        "the deploy; a path the server refuses stops the publish before anything is uploaded",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="return once the deploy task started"
    )
    parser.set_defaults(func=cmd_publish)


def cmd_publish(args) -> int:
    if not args.server:
        raise CommandError(f"give the server's URL with --server or {SERVER_ENV}", ExitCode.USAGE)
    if not args.api_key:
        raise CommandError(f"give an API key in {KEY_ENV} (or --api-key)", ExitCode.USAGE)
    try:
        client = Client(args.server, args.api_key)
        ok = publish(
            client,
            Path(args.directory),
            name=args.name,
            title=args.title,
            vanity=args.vanity,
            wait=not args.no_wait,
        )
    except PublishError as exc:
        raise CommandError(str(exc)) from None
    return ExitCode.OK if ok else ExitCode.FAILED


def default_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")[:64]
    if len(name) < 3:
        raise PublishError(f"cannot make an app name from the folder {folder.name!r}; give --name")
    return name


def publish(
    client: Client,
    folder: Path,
    *,
    name: str | None = None,
    title: str | None = None,
    vanity: str | None = None,
    wait: bool = True,
    say=print,
) -> bool:
    if not (folder / "plumber.R").is_file():
        raise PublishError(f"{folder} has no plumber.R")
    name = name or default_name(folder)
    found = client.call(
        "GET",
        "/__api__/applications?"
        + urllib.parse.urlencode([("filter", f"name:{name}"), ("count", "100"), ("offset", "0")]),
    )["applications"]
    if found:
        app = found[0]
        say(f"Updating {name} (app {app['id']})")
    else:
        body = {"name": name, **({"title": title} if title else {})}
        app = client.call("POST", "/__api__/applications", body)
        say(f"Created {name} (app {app['id']})")
    if vanity is not None:
        set_vanity(client, app, vanity, say)
    with tempfile.TemporaryDirectory(prefix="plumbline-publish-") as tmp:
        archive = Path(tmp) / "bundle.tar.gz"
        count = write_bundle(folder, archive)
        size = archive.stat().st_size
        say(f"Uploading {count} files ({size / 2**20:.1f} MiB)")
        with archive.open("rb") as body:
            bundle = client.call(
                "POST",
                f"/__api__/applications/{app['id']}/upload",
                raw=body,
                length=size,
                content_type="application/x-gzip",
            )
    task = client.call(
        "POST", f"/__api__/applications/{app['id']}/deploy", {"bundle": bundle["id"]}
    )
    say(f"Deploying bundle {bundle['id']} (task {task['task_id']})")
    if not wait:
        return True
    result = follow(client, task["task_id"], say)
    if result["code"] == 0:
        say(f"Published: {app['url']}")
        return True
    say(f"Deploy failed: {result['error']}")
    return False


def set_vanity(client: Client, app: dict, path: str, say) -> None:
    """The app's vanity path, when it is another (the server checks and normalises it)."""
    current = client.call("GET", f"/__api__/v1/apps/{app['id']}")["vanity_path"]
    if current is not None and current.strip("/") == path.strip("/"):
        return
    answer = client.call("PUT", f"/__api__/v1/apps/{app['id']}/vanity", {"path": path})
    say(f"Vanity path: {answer['path']} ({answer['url']})")


def follow(client: Client, task_id: str, say, poll: float = 0.5) -> dict:
    first = 0
    while True:
        task = client.call("GET", f"/__api__/tasks/{task_id}?first_status={first}")
        for line in task["status"]:
            say(f"  {line}")
        first = task["last_status"]
        if task["finished"]:
            return task
        time.sleep(poll)


def write_bundle(folder: Path, archive: Path) -> int:
    """The folder's files at the archive's top level, as rsconnect bundles them (and as
    `plumbline deploy` ships them: .rscignore counts, manifest.json and renv.lock go along)."""
    from plumbline.platform.spec.files import app_files

    files = app_files(folder)
    with tarfile.open(archive, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return len(files)


class Client:
    """The server's API over urllib, with `Authorization: Key`."""

    def __init__(self, url: str, key: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        if self.url.endswith("/__api__"):
            self.url = self.url[: -len("/__api__")]
        self.key = key
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        raw=None,
        length: int | None = None,
        content_type: str = "application/json",
    ) -> dict:
        headers = {"Authorization": f"Key {self.key}", "Accept": "application/json"}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
            headers["Content-Length"] = str(length if length is not None else len(data))
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error") or exc.reason
            except ValueError:
                detail = exc.reason
            raise PublishError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise PublishError(f"cannot reach the server at {self.url}: {exc}") from None
