"""Small files from the Hugging Face Hub (a config.json, a model's tokenizer files) over plain HTTPS.

Light on purpose (urllib only): the module inventory and the token statistics need a few kilobytes to megabytes
of a model before its weights are downloaded, and neither may import the Hugging Face libraries. `HF_TOKEN` is
sent when set (gated models); `HF_HUB_OFFLINE=1` makes every fetch fail at once, as the libraries do.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from lora_tui.core.paths import cache_dir, staged_dir
from lora_tui.i18n import _

HUB_URL = "https://huggingface.co"
"""Where files are fetched from (`$HF_ENDPOINT` overrides it, as in the Hugging Face libraries)."""

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
"""The files a tokenizer is measured with; the first one is required, the others are used when the repo has them."""


class HubError(Exception):
    """A fetch that did not succeed; the message says why in words (offline, not found, gated, …)."""


def offline() -> bool:
    """True when $HF_HUB_OFFLINE asks for no network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_file(repo_id: str, filename: str, *, timeout: float) -> bytes:
    """The bytes of `filename` in `repo_id` (main revision); HubError naming the reason otherwise."""
    if offline():
        raise HubError(_("HF_HUB_OFFLINE is set"))
    base = os.environ.get("HF_ENDPOINT", HUB_URL).rstrip("/")
    headers = {"User-Agent": "lora-tui"}
    if os.environ.get("HF_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['HF_TOKEN']}"
    request = urllib.request.Request(f"{base}/{repo_id}/resolve/main/{filename}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        why = {401: _("{file}: the repository is gated or private: set HF_TOKEN"),
               403: _("{file}: access denied: set HF_TOKEN"),
               404: _("{file}: not found")}.get(exc.code, _("{file}: HTTP {code}"))
        raise HubError(why.format(file=filename, code=exc.code)) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise HubError(_("the hub is not reachable ({reason})").format(reason=reason)) from None


def fetched_tokenizer_dir(repo_id: str) -> Path:
    """Where `fetch_tokenizer` keeps a repo's tokenizer files (lora-tui's cache, not the Hugging Face one)."""
    return cache_dir() / "tokenizers" / repo_id.replace("/", "--")


def fetch_tokenizer(repo_id: str, *, timeout: float = 30.0) -> Path:
    """Fetch `repo_id`'s tokenizer files (a few MB) and return its tokenizer.json; HubError when tokenizer.json
    cannot be had. Written to a temporary directory renamed into place, so a failed fetch leaves nothing."""
    target = fetched_tokenizer_dir(repo_id)
    with staged_dir(target) as tmp:
        for name in TOKENIZER_FILES:
            try:
                (tmp / name).write_bytes(hub_file(repo_id, name, timeout=timeout))
            except HubError:
                if name == TOKENIZER_FILES[0]:
                    raise
    return target / TOKENIZER_FILES[0]
