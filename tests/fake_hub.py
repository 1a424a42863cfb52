"""A local stand-in for the Hub's upload API, served by pytest-httpserver: it answers the calls `HfApi.create_repo`,
`create_branch` and `create_commit` make, asks for every file inline ("regular" upload mode, so the commit carries the
bytes) and records what was sent. Tests point `huggingface_hub` at it; nothing reaches the real Hub."""

import base64
import json
import re
from dataclasses import dataclass, field

from werkzeug import Request, Response


@dataclass
class Commit:
    repo_id: str
    revision: str
    create_pr: bool
    summary: str
    files: dict[str, bytes]


@dataclass
class FakeHub:
    url: str
    account: str = "someone"  # the namespace of a repository created without one
    fail_commits: bool = False
    created: list[dict] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def serve(self, httpserver) -> "FakeHub":
        routes = {
            "/api/repos/create": self._create_repo,
            "/api/validate-yaml": lambda request: _json({"errors": [], "warnings": []}),
            re.compile(r"/api/models/[^/]+/[^/]+/branch/.+"): self._create_branch,
            re.compile(r"/api/models/[^/]+/[^/]+/preupload/.+"): self._preupload,
            re.compile(r"/api/models/[^/]+/[^/]+/commit/.+"): self._commit,
        }
        for path, handler in routes.items():
            httpserver.expect_request(path, method="POST").respond_with_handler(self._recorded(handler))
        return self

    def _recorded(self, handler):
        def handle(request: Request) -> Response:
            self.requests.append(request.path)
            return handler(request)

        return handle

    def _create_repo(self, request: Request) -> Response:
        payload = request.get_json()
        self.created.append(payload)
        return _json({"url": f"{self.url}/{payload.get('organization') or self.account}/{payload['name']}"})

    def _create_branch(self, request: Request) -> Response:
        self.branches.append(request.path.rsplit("/branch/", 1)[1])
        return _json({})

    def _preupload(self, request: Request) -> Response:
        files = [
            {"path": file["path"], "uploadMode": "regular", "shouldIgnore": False}
            for file in request.get_json()["files"]
        ]
        return _json({"files": files})

    def _commit(self, request: Request) -> Response:
        if self.fail_commits:
            return Response("the Hub is down", status=500)
        lines = [json.loads(line) for line in request.get_data().splitlines() if line]
        repo_id, revision = re.fullmatch(r"/api/models/(.+)/commit/(.+)", request.path).groups()
        self.commits.append(
            Commit(
                repo_id=repo_id,
                revision=revision,
                create_pr=request.args.get("create_pr") == "1",
                summary=lines[0]["value"]["summary"],
                files={line["value"]["path"]: base64.b64decode(line["value"]["content"]) for line in lines[1:]},
            )
        )
        pull_request = f"{self.url}/{repo_id}/discussions/1" if request.args.get("create_pr") else None
        return _json(
            {
                "commitUrl": f"{self.url}/{repo_id}/commit/{'a' * 40}",
                "commitOid": "a" * 40,
                "pullRequestUrl": pull_request,
            }
        )


def _json(payload) -> Response:
    return Response(json.dumps(payload), content_type="application/json")


def serve_fake_hub(httpserver, monkeypatch) -> FakeHub:
    """The fake Hub on pytest-httpserver's server, with `huggingface_hub` pointed at it and a token set."""
    url = httpserver.url_for("").rstrip("/")
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", url)
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")
    return FakeHub(url).serve(httpserver)
