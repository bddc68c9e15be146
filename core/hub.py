"""Where a model or tokenizer comes from: a local folder or a hub name, checked up front.

A name that looks like a path (absolute, `./`, `~`, or with more than one `/`) must be
an existing folder. A hub name (`org/name`) is taken from the local cache when the hub
is unreachable: without a network, `from_pretrained` otherwise retries for about a
minute before failing, so `prefer_offline` switches the hub client to offline mode at
once when the hub's host name does not resolve.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HUB_HOST = "huggingface.co"


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or Path(name).exists()


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub's host name resolves (no request is sent)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        socket.getaddrinfo(HUB_HOST, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(previous)


def prefer_offline() -> None:
    """Offline mode for the hub client when the hub cannot be reached (set before the
    first transformers/huggingface_hub import takes effect)."""
    if not os.environ.get("HF_HUB_OFFLINE") and not hub_reachable():  # "" counts as unset
        os.environ["HF_HUB_OFFLINE"] = "1"


def model_source_problems(name: str, key: str, needs: str = "config.json") -> list[str]:
    """Why `name` cannot be loaded (an empty list when it can, as far as can be told
    without loading): a missing folder, a folder without `needs`, or a hub name that is
    not in the local cache while offline."""
    if looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            return [f"{key}: {name!r}: no such folder"]
        if needs and not (path / needs).is_file():
            return [f"{key}: {name!r} has no {needs}; is it a saved model or tokenizer folder?"]
        return []
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True", "YES", "yes"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, needs or "config.json"), str):
            return [
                f"{key}: {name!r} is a hub name that is not in the local cache, and the hub "
                "is unreachable (offline); download it beforehand or give a local folder"
            ]
    return []
