"""How the language pairs of a recipe are mixed in a stage: how many sentence pairs of each.

OPUS-100 pairs range from thousands to a million lines, so "all lines once" lets the
largest pairs dominate. Three methods, chosen per stage in the recipe (`mixing`, and
`stage_mixing.stageN` to override one stage):

- `proportional` (default): every cleaned line once; shares follow the corpus sizes.
- `capped`: at most `cap` lines of each pair (a seeded sample of the larger ones).
- `temperature`: pair i gets a share p_i proportional to n_i ** (1 / T) of the same total
  number of lines (T = 1 is proportional, larger T flattens towards uniform; T = 5 is the
  usual choice of massively multilingual MT). Smaller pairs are repeated (every line
  `k` times, plus a seeded sample), larger ones subsampled.

Which lines are drawn depends only on (seed, stage, pair), so builds are reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

MixMethod = Literal["proportional", "capped", "temperature"]


@dataclass(frozen=True)
class MixConfig:
    method: MixMethod = "proportional"
    cap: int | None = None
    temperature: float = 5.0

    def problems(self, key: str = "mixing") -> list[str]:
        found = []
        if self.method == "capped" and (self.cap is None or self.cap < 1):
            found.append(f"{key}.cap: method 'capped' needs cap >= 1 (lines per pair)")
        if self.cap is not None and self.method != "capped":
            found.append(f"{key}.cap: only for method 'capped' (this is {self.method!r})")
        if self.temperature <= 0:
            found.append(f"{key}.temperature: must be > 0")
        return found

    def describe(self) -> str:
        if self.method == "capped":
            return f"capped at {self.cap} lines per pair"
        if self.method == "temperature":
            return f"temperature T={self.temperature:g}"
        return "proportional"


def plan(config: MixConfig, sizes: dict[str, int]) -> dict[str, int]:
    """Lines to draw from each pair, from the cleaned line counts `sizes`."""
    if config.method == "proportional":
        return dict(sizes)
    if config.method == "capped":
        assert config.cap is not None, "checked by problems()"
        return {pair: min(n, config.cap) for pair, n in sizes.items()}
    weights = {pair: n ** (1.0 / config.temperature) for pair, n in sizes.items()}
    total, mass = sum(sizes.values()), sum(weights.values())
    # Largest-remainder rounding keeps the total exactly the corpus size.
    exact = {pair: total * w / mass for pair, w in weights.items()}
    drawn = {pair: int(x) for pair, x in exact.items()}
    by_remainder = sorted(exact, key=lambda p: (drawn[p] - exact[p], p))
    for pair in by_remainder[: total - sum(drawn.values())]:
        drawn[pair] += 1
    return drawn


def repeats(n: int, target: int, rng: random.Random) -> list[int] | None:
    """How often each of `n` lines is used to draw `target` lines; None: each once."""
    if target == n:
        return None
    whole, rest = divmod(target, n)
    counts = [whole] * n
    for line in rng.sample(range(n), rest):
        counts[line] += 1
    return counts


def line_repeats(
    config: MixConfig, sizes: dict[str, int], seed: int, stage: str
) -> dict[str, list[int] | None]:
    """Per pair, how often each cleaned line is used in `stage` (None: each once)."""
    drawn = plan(config, sizes)
    return {
        pair: repeats(n, drawn[pair], random.Random(f"{seed}|{stage}|{pair}|mix"))
        for pair, n in sizes.items()
    }


def summary(config: MixConfig, sizes: dict[str, int]) -> dict[str, Any]:
    """The manifest entry: method and, per pair, its lines, lines drawn and share."""
    drawn = plan(config, sizes)
    total = max(1, sum(drawn.values()))
    entry: dict[str, Any] = {"method": config.method}
    if config.method == "capped":
        entry["cap"] = config.cap
    if config.method == "temperature":
        entry["temperature"] = config.temperature
    entry["pairs"] = {
        pair: {"lines": sizes[pair], "drawn": drawn[pair], "share": round(drawn[pair] / total, 4)}
        for pair in sizes
    }
    return entry


def format_summary(stage: str, entry: dict[str, Any]) -> str:
    """One line for the build's output: `stage1-mt: temperature T=5: af-en 12.3%, ...`."""
    config = MixConfig(entry["method"], entry.get("cap"), entry.get("temperature", 5.0))
    shares = ", ".join(
        f"{pair} {info['share']:.1%} ({info['drawn']} of {info['lines']})"
        for pair, info in entry["pairs"].items()
    )
    return f"{stage}: {config.describe()}: {shares}"
