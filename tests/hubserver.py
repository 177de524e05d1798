"""A small Hugging Face Hub-compatible HTTP server for tests (stdlib http.server, one thread a request).

It speaks the subset of the Hub's HTTP API that ``huggingface_hub``'s create_repo, update_repo_settings,
create_branch, upload_folder (preupload, LFS batch / upload / verify, ndjson commit), model_info,
list_repo_tree, list_models and hf_hub_download / snapshot_download (resolve with ETag and X-Repo-Commit)
use, with token-based namespaces, private and gated repos. Blobs are stored by sha256 under a folder;
LFS downloads redirect to a "CDN" on another host name (localhost), as the Hub's do. Tokens are compared
and never stored beyond the user table the test gives, nor logged. ``Cli`` runs the fusecpath CLI against
it in a fresh process (huggingface_hub reads HF_ENDPOINT when imported); ``leaks`` finds a token in
outputs or files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# Files the Hub stores with LFS (as its default .gitattributes does), beside any binary or large file.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".png", ".jpg", ".npy", ".pkl", ".zip")
GITATTRIBUTES = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)
HUB_LICENCES = {
    "apache-2.0",
    "mit",
    "bsd-3-clause",
    "cc0-1.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc-by-nc-nd-4.0",
    "gpl-2.0",
    "gpl-3.0",
    "lgpl-3.0",
    "agpl-3.0",
    "openrail",
    "other",
}


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Entry:
    size: int
    sha256: str
    oid: str  # git blob id (of the content for regular files, of the LFS pointer for LFS files)
    lfs: bool


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    date: str
    files: dict[str, Entry]


@dataclass
class Repo:
    id: str
    private: bool
    gated: Any = False
    created: str = field(default_factory=now)
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)


class HubState:
    """Repos, blobs and users. ``fail_commit`` makes the next commit fail with HTTP 500 (a Hub outage)."""

    def __init__(self, root: Path, users: dict[str, tuple[str, tuple[str, ...]]]):
        self.root = root
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.users = users  # token -> (user name, organisations)
        self.repos: dict[str, Repo] = {}
        self.signatures: dict[str, str] = {}  # oid -> one-time upload signature
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, authenticated)
        self.fail_commit = False
        self.lock = threading.RLock()
        self.cdn_key = secrets.token_bytes(16)

    def cdn_signature(self, sha256: str) -> str:
        return hmac.new(self.cdn_key, sha256.encode(), "sha256").hexdigest()

    def blob(self, sha256: str) -> Path:
        return self.blobs / sha256

    def store(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.blob(digest).write_bytes(data)
        return digest

    def new_commit(self, repo: Repo, parent: str | None, title: str, files: dict[str, Entry]) -> Commit:
        blob = json.dumps([parent, title, time.time_ns(), sorted((p, e.sha256) for p, e in files.items())])
        commit = Commit(hashlib.sha1(blob.encode()).hexdigest(), parent, title, now(), files)
        repo.commits[commit.oid] = commit
        return commit


class HttpError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict | None = None,
        body: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.headers, self.body = status, code, headers or {}, body or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState
    base: str

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # -- plumbing -------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _user(self, required: bool) -> tuple[str, tuple[str, ...]] | None:
        auth = self.headers.get("authorization", "")
        if not auth:
            if required:
                raise HttpError(401, "You must be authenticated to do this")
            return None
        token = auth.removeprefix("Bearer ").strip()
        user = self.state.users.get(token)
        if user is None:
            raise HttpError(401, "Invalid credentials in Authorization header")
        return user

    def _can_write(self, namespace: str) -> None:
        user = self._user(required=True)
        if namespace != user[0] and namespace not in user[1]:
            raise HttpError(
                403, f"You don't have the rights to write to the namespace {namespace}", code="Forbidden"
            )

    def _repo(self, repo_id: str, write: bool = False, content: bool = False) -> Repo:
        repo = self.state.repos.get(repo_id)
        namespace = repo_id.split("/")[0]
        user = self._user(required=False)
        owner = user is not None and (namespace == user[0] or namespace in user[1])
        if repo is None or (repo.private and not owner):
            raise HttpError(404, "Repository not found", code="RepoNotFound")
        if write:
            self._can_write(namespace)
        if content and repo.gated and user is None:
            raise HttpError(
                401, "Access to this model is restricted: log in and accept its terms", code="GatedRepo"
            )
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        revision = unquote(revision)
        oid = repo.branches.get(revision, revision)
        if oid not in repo.commits:
            raise HttpError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return repo.commits[oid]

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        self.state.requests.append((self.command, path, bool(self.headers.get("authorization"))))
        routes = (
            ("POST", r"/api/repos/create", self.create_repo),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("GET", r"/api/models", self.list_models),
            ("PUT", r"/api/models/([^/]+/[^/]+)/settings", self.settings),
            ("POST", r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", self.preupload),
            ("POST", r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", self.commit),
            ("POST", r"/api/models/([^/]+/[^/]+)/branch/([^/]+)", self.create_branch),
            ("GET", r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", self.tree),
            ("GET", r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", self.model_info),
            ("POST", r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", self.lfs_batch),
            ("POST", r"/([^/]+/[^/]+)\.git/info/lfs/objects/verify", self.lfs_verify),
            ("PUT", r"/lfs-upload/([0-9a-f]{64})", self.lfs_upload),
            ("GET", r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.resolve),
            ("HEAD", r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.resolve),
            ("GET", r"/cdn-lfs/([0-9a-f]{64})", self.cdn),
            ("HEAD", r"/cdn-lfs/([0-9a-f]{64})", self.cdn),
        )
        try:
            for method, pattern, handler in routes:
                match = re.fullmatch(pattern, path)
                if method == self.command and match:
                    with self.state.lock:
                        handler(query, *match.groups())
                    return
            raise HttpError(404, f"no route for {self.command} {path}")
        except HttpError as exc:
            headers = {"X-Error-Message": str(exc), **exc.headers}
            if exc.code:
                headers["X-Error-Code"] = exc.code
            self._json({"error": str(exc), **exc.body}, exc.status, headers)

    do_GET = do_POST = do_PUT = do_HEAD = _dispatch

    # -- repos ----------------------------------------------------------------------------------------
    def create_repo(self, query) -> None:
        payload = json.loads(self._body())
        if payload.get("type", "model") != "model":
            raise HttpError(400, "this test Hub serves model repos only")
        namespace = payload.get("organization") or (self._user(required=True) or ("",))[0]
        repo_id = f"{namespace}/{payload['name']}"
        self._can_write(namespace)
        if repo_id in self.state.repos:
            raise HttpError(
                409, "You already created this model repo", body={"url": f"{self.base}/{repo_id}"}
            )
        repo = Repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        data = GITATTRIBUTES
        entry = Entry(len(data), self.state.store(data), git_oid(data), lfs=False)
        repo.branches["main"] = self.state.new_commit(
            repo, None, "initial commit", {".gitattributes": entry}
        ).oid
        self.state.repos[repo_id] = repo
        self._json({"url": f"{self.base}/{repo_id}", "name": repo_id, "id": repo_id})

    def settings(self, query, repo_id) -> None:
        repo = self._repo(repo_id, write=True)
        payload = json.loads(self._body())
        if "gated" in payload:
            if payload["gated"] not in ("auto", "manual", False):
                raise HttpError(400, "gated must be 'auto', 'manual' or false")
            repo.gated = payload["gated"]
        if "visibility" in payload:
            repo.private = payload["visibility"] == "private"
        self._json({})

    def create_branch(self, query, repo_id, branch) -> None:
        repo = self._repo(repo_id, write=True)
        body = self._body()
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        branch = unquote(branch)
        if branch in repo.branches:
            raise HttpError(409, f"Reference refs/heads/{branch} already exists")
        repo.branches[branch] = self._commit(repo, start).oid
        self._json({})

    def validate_yaml(self, query) -> None:
        content = json.loads(self._body()).get("content", "")
        match = re.match(r"^---\r?\n(.*?)\r?\n---\r?\n", content, re.S)
        errors = []
        try:
            meta = (yaml.safe_load(match.group(1)) if match else {}) or {}
        except yaml.YAMLError as exc:
            meta, errors = {}, [{"message": f"invalid YAML: {exc}"}]
        if not isinstance(meta, dict):
            meta, errors = {}, [{"message": "metadata must be a mapping"}]
        if "license" in meta and meta["license"] not in HUB_LICENCES:
            errors.append({"message": f'"license" must be one of the Hub licences, not {meta["license"]!r}'})
        if meta.get("license") == "other" and not (meta.get("license_name") and meta.get("license_link")):
            errors.append({"message": '"license: other" needs "license_name" and "license_link"'})
        for key in ("tags", "base_model"):
            value = meta.get(key, [])
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)) and not isinstance(
                value, str
            ):
                errors.append({"message": f'"{key}" must be a list of strings'})
        self._json({"errors": errors, "warnings": []}, 400 if errors else 200)

    # -- upload ---------------------------------------------------------------------------------------
    def preupload(self, query, repo_id, revision) -> None:
        repo = self._repo(repo_id, write=True)
        head = self._commit(repo, revision)
        files = []
        for item in json.loads(self._body())["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] > 10_000_000 or b"\0" in sample
            existing = head.files.get(item["path"])
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._json({"files": files, "commitOid": head.oid})

    def lfs_batch(self, query, repo_id) -> None:
        self._repo(repo_id, write=True)
        payload = json.loads(self._body())
        if payload.get("operation") != "upload":
            raise HttpError(400, "this test Hub accepts LFS uploads only")
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], obj["size"]
            if self.state.blob(oid).is_file() and self.state.blob(oid).stat().st_size == size:
                objects.append({"oid": oid, "size": size})
                continue
            signature = self.state.signatures.setdefault(oid, secrets.token_hex(16))
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {
                        "upload": {"href": f"{self.base}/lfs-upload/{oid}?sig={signature}", "header": {}},
                        "verify": {
                            "href": f"{self.base}/{repo_id}.git/info/lfs/objects/verify",
                            "header": {},
                        },
                    },
                }
            )
        self._json(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def lfs_upload(self, query, oid) -> None:
        if query.get("sig", [""])[0] != self.state.signatures.get(oid):
            raise HttpError(403, "bad or expired upload signature")
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HttpError(400, "uploaded content does not match its sha256")
        self.state.store(data)
        self.state.signatures.pop(oid, None)
        self._send(200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    def lfs_verify(self, query, repo_id) -> None:
        self._repo(repo_id, write=True)
        obj = json.loads(self._body())
        blob = self.state.blob(obj["oid"])
        if not blob.is_file() or blob.stat().st_size != obj["size"]:
            raise HttpError(404, "object not uploaded")
        self._json({"success": True})

    def commit(self, query, repo_id, revision) -> None:
        repo = self._repo(repo_id, write=True)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if self.state.fail_commit:
            self.state.fail_commit = False
            raise HttpError(500, "Internal Error - the commit could not be created")
        branch = unquote(revision)
        if branch not in repo.branches:
            raise HttpError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
        head = repo.commits[repo.branches[branch]]
        files = dict(head.files)
        header = {}
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                header = value
                if value.get("parentCommit") not in (None, head.oid):
                    raise HttpError(412, "parent commit is not the head of the branch")
            elif key == "file":
                data = base64.b64decode(value["content"])
                files[value["path"]] = Entry(len(data), self.state.store(data), git_oid(data), lfs=False)
            elif key == "lfsFile":
                blob = self.state.blob(value["oid"])
                if not blob.is_file():
                    raise HttpError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                size = blob.stat().st_size
                pointer = (
                    f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}\nsize {size}\n"
                )
                files[value["path"]] = Entry(size, value["oid"], git_oid(pointer.encode()), lfs=True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HttpError(404, "A file with this name doesn't exist", code="EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: e for p, e in files.items() if not p.startswith(prefix)}
            else:
                raise HttpError(400, f"unknown commit operation {key!r}")
        commit = self.state.new_commit(repo, head.oid, header.get("summary", ""), files)
        repo.branches[branch] = commit.oid
        self._json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.base}/{repo_id}/commit/{commit.oid}",
                "hookOutput": "",
            }
        )

    # -- read -----------------------------------------------------------------------------------------
    def _card_data(self, commit: Commit) -> dict | None:
        entry = commit.files.get("README.md")
        if entry is None:
            return None
        match = re.match(r"^---\r?\n(.*?)\r?\n---", self.state.blob(entry.sha256).read_text(), re.S)
        return (yaml.safe_load(match.group(1)) or None) if match else None

    def _info(self, repo: Repo, commit: Commit) -> dict:
        card = self._card_data(commit) or {}
        tags = list(card.get("tags") or [])
        if card.get("library_name"):
            tags.insert(0, card["library_name"])
        return {
            "_id": hashlib.md5(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "library_name": card.get("library_name"),
            "tags": list(dict.fromkeys(tags)),
            "cardData": card or None,
            "createdAt": repo.created,
            "lastModified": commit.date,
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
        }

    def model_info(self, query, repo_id, revision=None) -> None:
        repo = self._repo(repo_id)
        self._json(self._info(repo, self._commit(repo, revision or "main")))

    def list_models(self, query) -> None:
        wanted = query.get("filter", [])
        search = query.get("search", [""])[0].lower()
        limit = int(query.get("limit", ["1000"])[0])
        user = self._user(required=False)
        rows = []
        for repo in self.state.repos.values():
            owner = user is not None and repo.id.split("/")[0] in (user[0], *user[1])
            if repo.private and not owner:
                continue
            info = self._info(repo, repo.commits[repo.branches["main"]])
            if all(tag in info["tags"] for tag in wanted) and search in repo.id.lower():
                rows.append(info)
        self._json(rows[:limit])

    def tree(self, query, repo_id, revision, prefix=None) -> None:
        repo = self._repo(repo_id)
        commit = self._commit(repo, revision)
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        prefix = unquote(prefix or "").strip("/")
        base = f"{prefix}/" if prefix else ""
        if prefix and not any(p.startswith(base) for p in commit.files):
            raise HttpError(404, f"{prefix} does not exist", code="EntryNotFound")
        entries, folders = [], set()
        for path, entry in sorted(commit.files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base) :].split("/")
            for depth in range(1, len(rest)):
                if recursive or depth == 1:
                    folders.add(base + "/".join(rest[:depth]))
            if len(rest) > 1 and not recursive:
                continue
            item = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
            if entry.lfs:
                item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
            entries.append(item)
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
            for f in sorted(folders)
        ]
        self._json(dirs + entries)

    def resolve(self, query, repo_id, revision, filename) -> None:
        repo = self._repo(repo_id, content=True)
        commit = self._commit(repo, revision)
        filename = unquote(filename)
        entry = commit.files.get(filename)
        if entry is None:
            raise HttpError(
                404,
                f"{filename} does not exist at {commit.oid}",
                code="EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        etag = entry.sha256 if entry.lfs else entry.oid
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{etag}"'}
        if entry.lfs:  # like the Hub: LFS files redirect to a CDN on another host, with a signed URL
            port = urlsplit(self.base).port
            headers.update(
                {
                    "X-Linked-Etag": f'"{entry.sha256}"',
                    "X-Linked-Size": entry.size,
                    "Location": f"http://localhost:{port}/cdn-lfs/{entry.sha256}"
                    f"?sig={self.state.cdn_signature(entry.sha256)}",
                }
            )
            self._send(302, b"", headers)
            return
        self._serve(self.state.blob(entry.sha256).read_bytes(), headers)

    def cdn(self, query, sha256) -> None:
        if (
            query.get("sig", [""])[0] != self.state.cdn_signature(sha256)
            or not self.state.blob(sha256).is_file()
        ):
            raise HttpError(403, "bad signature")
        self._serve(self.state.blob(sha256).read_bytes(), {"ETag": f'"{sha256}"'})

    def _serve(self, data: bytes, headers: dict) -> None:
        start = 0
        if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
            start = min(int(match.group(1)), len(data))
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": len(data) - start}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(206 if start else 200, data[start:], headers, ctype="application/octet-stream")


class HubServer:
    """The server on 127.0.0.1 on a free port, in a daemon thread; ``url`` is what HF_ENDPOINT gets."""

    def __init__(self, root: Path, users: dict[str, tuple[str, tuple[str, ...]]]):
        self.state = HubState(root, users)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        handler.base = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving (idempotent): later requests get 'connection refused', like a Hub that is down."""
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
        self.httpd.server_close()


class Cli:
    """Runs ``fusecpath`` in a subprocess against the test Hub; keeps every output for the token check."""

    def __init__(self, hub: HubServer, root: Path, token: str):
        self.hub, self.root, self.token, self.outputs = hub, root, token, []

    def __call__(self, *args: str, token: str | None = "default", home: str = "home", **env: str):
        """Run ``fusecpath ARGS`` with HF_HOME=ROOT/HOME and the given token (None: no token)."""
        return self.python("-m", "fusecpath", *args, token=token, home=home, **env)

    def python(self, *args: str, token: str | None = "default", home: str = "home", **env: str):
        """Run ``python ARGS`` in the same environment."""
        token = self.token if token == "default" else token
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
        environ.update(
            HF_ENDPOINT=self.hub.url,
            HF_HUB_DISABLE_XET="1",
            HF_HOME=str(self.root / home),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_ETAG_TIMEOUT="5",
            **env,
        )
        if token:
            environ["HF_TOKEN"] = token
        run = subprocess.run(
            [sys.executable, *args], env=environ, capture_output=True, text=True, timeout=300
        )
        self.outputs.append(run.stdout + run.stderr)
        return run


def leaks(cli: Cli, root: Path, secrets: tuple[str, ...]) -> list[str]:
    """Where any of ``secrets`` appears: in a command's output, or in any file under ``root``."""
    found = [
        f"output of command {i}" for i, text in enumerate(cli.outputs) if any(s in text for s in secrets)
    ]
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [str(path) for s in secrets if s.encode() in data]
    return found
