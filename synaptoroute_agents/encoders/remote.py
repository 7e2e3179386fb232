"""An encoder for OpenAI-compatible ``/embeddings`` HTTP services (optional extra ``remote``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EncoderError
from .base import as_unit_rows

__all__ = ["OpenAICompatibleEncoder"]


class OpenAICompatibleEncoder:
    """Embeds through ``POST {base_url}/embeddings`` (OpenAI's shape; vLLM, Ollama, TEI, ... serve it).

    This is the only encoder that talks to the network, and only to the address you give.

    Args:
        base_url: for example ``"http://127.0.0.1:8080/v1"``.
        model: the model name the service expects.
        api_key: sent as a Bearer token; defaults to the environment variable ``OPENAI_API_KEY``.
        dim: the embedding size; found with one request when None.
        timeout: seconds per request.
        batch_size: texts per request.
        client: an ``httpx.Client`` to use instead of a new one.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 128,
        client: Any = None,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise EncoderError(
                "the remote encoder needs httpx: pip install 'synaptoroute-agents[remote]'"
            ) from exc
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = client or httpx.Client(timeout=timeout, headers=headers)
        self._batch_size = batch_size
        self._dim = dim

    @property
    def model_id(self) -> str:
        return f"openai-compatible:{self._model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        try:
            resp = self._client.post(self._url, json={"model": self._model, "input": list(texts)})
            resp.raise_for_status()
            data = resp.json()["data"]
            rows = [item["embedding"] for item in sorted(data, key=lambda item: item.get("index", 0))]
        except Exception as exc:
            raise EncoderError(f"remote embedding request to {self._url} failed: {exc}") from exc
        return np.asarray(rows, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with one request per ``batch_size`` texts."""
        if len(texts) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [
            self._request(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)
        ]
        return as_unit_rows(np.concatenate(parts), len(texts), self.dim)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
