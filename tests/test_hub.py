"""Hub downloads: each failure is one line that says what to do."""

from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import errors

from polyasr.errors import ModelError
from polyasr.hub import download

RESPONSE = SimpleNamespace(headers={}, request=None)
MULTI_LINE = "403 Client Error.\n\nCannot access content at: https://huggingface.co/x\nMore text."


def failing(exc: Exception):
    """A snapshot_download that finds nothing in the cache and then raises `exc`."""

    def fake(
        repo_id, revision=None, allow_patterns=None, ignore_patterns=None, local_files_only=False
    ):
        if local_files_only:
            raise errors.LocalEntryNotFoundError("not in the cache")
        raise exc

    return fake


def error_of(monkeypatch, exc: Exception, repo: str = "org/model") -> str:
    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing(exc))
    with pytest.raises(ModelError) as info:
        download(repo)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_gated_repository_says_how_to_get_access(monkeypatch):
    message = error_of(monkeypatch, errors.GatedRepoError(MULTI_LINE, response=RESPONSE))
    assert message.startswith("model 'org/model' is gated on the Hugging Face hub")
    assert "https://huggingface.co/org/model" in message and "HF_TOKEN" in message


def test_missing_repository_and_revision(monkeypatch):
    missing = errors.RepositoryNotFoundError(MULTI_LINE, response=RESPONSE)
    assert "does not exist on the Hugging Face hub" in error_of(monkeypatch, missing)
    revision = errors.RevisionNotFoundError(MULTI_LINE, response=RESPONSE)
    assert error_of(monkeypatch, revision, "org/model@v9") == (
        "model 'org/model' has no revision 'v9' on the hub"
    )


def test_other_http_errors_keep_one_line_of_the_server_text(monkeypatch):
    http = errors.HfHubHTTPError(MULTI_LINE, response=RESPONSE)
    assert error_of(monkeypatch, http) == "cannot download 'org/model': 403 Client Error."


def test_disk_errors_while_downloading(monkeypatch):
    full = OSError(28, "No space left on device")
    assert "No space left on device" in error_of(monkeypatch, full)


def test_unreachable_hub_without_a_cached_copy(tmp_path, monkeypatch):
    """The real client, with no network on the test machine or HF_HUB_OFFLINE set."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelError, match="hub is unreachable .* --model PATH$"):
        download("openai/whisper-tiny")


def test_a_cached_copy_is_used_without_the_network(tmp_path, monkeypatch):
    calls = []

    def fake(
        repo_id, revision=None, allow_patterns=None, ignore_patterns=None, local_files_only=False
    ):
        calls.append(local_files_only)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert download("org/model@main") == tmp_path
    assert calls == [True]
