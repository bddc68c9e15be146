"""Builders of MTInstruct, AlignInstruct, HintInstruct and ReviseInstruct samples, and
of plain-text samples (`text`: each side of a pair, empty prompt) for pre-training.

Each sentence pair gets its own RNG seeded from (seed, stage, language pair, line),
so the output does not depend on worker count or on which other types are built.
AlignInstruct positives are 1-to-1 links between content words in the configured
link set (intersection by default); a negative keeps the source word and pairs it
with a content word of the other sentence that the *union* of both directional
alignments does not link to any occurrence of that source word, so a negative can
never state a pair that any symmetrisation links.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from data_prep.align import Links
from data_prep.contract.templates import Templates
from data_prep.recipe import AlignInstructConfig, HintInstructConfig, ReviseInstructConfig
from data_prep.wordtok import Word, is_content


@dataclass(frozen=True)
class Sample:
    """One instruction: `src`/`tgt` are the language codes of L1 and L2."""

    kind: str
    src: str
    tgt: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class LinkStats:
    """Corpus-wide counts of linked (source, target) word pairs, lower-cased.

    `consistency(x, y)` is min(P(y | x), P(x | y)) over the links of the whole corpus: a
    link that the aligner makes rarely for these two words is more likely an error.
    """

    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    src: Counter[str] = field(default_factory=Counter)
    tgt: Counter[str] = field(default_factory=Counter)
    swapped: bool = False

    def add(self, x: str, y: str) -> None:
        self.pairs[x, y] += 1
        self.src[x] += 1
        self.tgt[y] += 1

    def consistency(self, x: str, y: str) -> float:
        if self.swapped:
            x, y = y, x
        count = self.pairs.get((x, y), 0)
        return min(count / self.src[x], count / self.tgt[y]) if count else 0.0

    def flipped(self) -> LinkStats:
        return LinkStats(self.pairs, self.src, self.tgt, not self.swapped)


@dataclass(frozen=True)
class AlignedPair:
    """A cleaned sentence pair with its words and link sets (all as (src, tgt))."""

    line: int
    src_lang: str
    tgt_lang: str
    src: str
    tgt: str
    src_words: list[Word]
    tgt_words: list[Word]
    links: dict[str, Links]
    stats: dict[str, LinkStats] = field(default_factory=dict)

    def flipped(self) -> AlignedPair:
        """The same pair seen from the target side."""
        return AlignedPair(
            self.line,
            self.tgt_lang,
            self.src_lang,
            self.tgt,
            self.src,
            self.tgt_words,
            self.src_words,
            {name: [(j, i) for i, j in links] for name, links in self.links.items()},
            {name: stats.flipped() for name, stats in self.stats.items()},
        )


@dataclass(frozen=True)
class BuildSettings:
    templates: Templates
    names: dict[str, str]
    ratios: dict[str, float]
    align: AlignInstructConfig
    hint: HintInstructConfig
    revise: ReviseInstructConfig
    both_directions: bool
    seed: int
    stage: str


def one_to_one_content_links(pair: AlignedPair, link_set: str) -> Links:
    """1-to-1 links of `link_set` whose two words are both content words."""
    links = pair.links[link_set]
    src_count = Counter(i for i, _ in links)
    tgt_count = Counter(j for _, j in links)
    return [
        (i, j)
        for i, j in links
        if src_count[i] == 1
        and tgt_count[j] == 1
        and is_content(pair.src_words[i].text)
        and is_content(pair.tgt_words[j].text)
    ]


def qualifying_links(pair: AlignedPair, link_set: str, min_consistency: float = 0.0) -> Links:
    """Links that may be stated as true: 1-to-1, content words, and (when asked and the
    pair carries corpus statistics) a link consistency of at least `min_consistency`."""
    links = one_to_one_content_links(pair, link_set)
    stats = pair.stats.get(link_set)
    if min_consistency <= 0 or stats is None:
        return links
    return [
        (i, j)
        for i, j in links
        if stats.consistency(pair.src_words[i].text.lower(), pair.tgt_words[j].text.lower())
        >= min_consistency
    ]


def collect_stats(pairs: Iterable[AlignedPair], link_set: str) -> LinkStats:
    """Count the 1-to-1 content links of `link_set` over a corpus."""
    stats = LinkStats()
    for pair in pairs:
        for i, j in one_to_one_content_links(pair, link_set):
            stats.add(pair.src_words[i].text.lower(), pair.tgt_words[j].text.lower())
    return stats


def negative_targets(pair: AlignedPair, i: int) -> list[int]:
    """Target positions that may pair with source word `i` in a False assertion."""
    surface = pair.src_words[i].text.lower()
    linked = {
        pair.tgt_words[j].text.lower()
        for a, j in pair.links["union"]
        if pair.src_words[a].text.lower() == surface
    }
    return [
        j
        for j, word in enumerate(pair.tgt_words)
        if is_content(word.text)
        and word.text.lower() not in linked
        and word.text.lower() != surface
    ]


_ALIGN_TRIES = 5


def _draw(rng: random.Random, ratio: float) -> int:
    whole = int(ratio)
    return whole + (rng.random() < ratio - whole)


@dataclass
class InstructionBuilder:
    """Turns aligned pairs into samples of the stage's instruction types."""

    settings: BuildSettings
    kinds: list[str]
    skipped: Counter[str] = field(default_factory=Counter)
    _pools: dict[str, list[str]] = field(default_factory=dict)
    _pool_pos: dict[str, int] = field(default_factory=dict)

    def samples(self, pair: AlignedPair, repeat: int = 0) -> Iterator[Sample]:
        """The samples of one pair; `repeat` > 0 when pair mixing uses the line again
        (its own draws, so a repeated line yields other AlignInstruct/Hint/Revise samples)."""
        s = self.settings
        again = f"|{repeat}" if repeat else ""
        rng = random.Random(
            f"{s.seed}|{s.stage}|{pair.src_lang}-{pair.tgt_lang}|{pair.line}{again}"
        )
        views = [pair, pair.flipped()] if s.both_directions else [pair]
        for kind in self.kinds:
            if kind == "text":  # both sides whatever `directions` says: it is not translation
                for _ in range(_draw(rng, s.ratios.get(kind, 1.0))):
                    yield from self._text(pair)
                continue
            if kind == "align":
                stated: set[tuple[str, str, bool]] = set()
                for _ in range(_draw(rng, s.ratios.get(kind, 1.0))):
                    yield from self._align(rng, rng.choice(views), stated)
                continue
            for view in views:
                for _ in range(_draw(rng, s.ratios.get(kind, 1.0))):
                    yield from getattr(self, f"_{kind}")(rng, view)
        if "revise" in self.kinds:
            self._remember(pair)

    def _names(self, view: AlignedPair) -> tuple[str, str]:
        return self.settings.names[view.src_lang], self.settings.names[view.tgt_lang]

    def _mt(self, rng: random.Random, view: AlignedPair) -> Iterator[Sample]:
        prompt, answer = self.settings.templates.mt(*self._names(view), view.src, view.tgt)
        yield Sample("mt", view.src_lang, view.tgt_lang, prompt, answer)

    def _text(self, pair: AlignedPair) -> Iterator[Sample]:
        """Each side as plain text: an empty prompt, so the loss covers every token."""
        for lang, text in ((pair.src_lang, pair.src), (pair.tgt_lang, pair.tgt)):
            yield Sample("text", lang, lang, "", text)

    def _align(
        self, rng: random.Random, view: AlignedPair, stated: set[tuple[str, str, bool]]
    ) -> Iterator[Sample]:
        """One True/False assertion about a word pair of `view`. With several samples per
        sentence pair (`ratios.align` > 1) the label is drawn for each (so the positive
        share holds) and a word pair already stated for this sentence pair is not repeated:
        it is redrawn a few times, then skipped."""
        config = self.settings.align
        positives = qualifying_links(view, config.links, config.min_consistency)
        if not positives:
            self.skipped["align_no_links"] += 1
            return
        label = rng.random() < self.settings.align.positive_share
        for _ in range(_ALIGN_TRIES):
            i, j = rng.choice(positives)
            if not label:
                options = [(a, negative_targets(view, a)) for a, _ in positives]
                options = [(a, js) for a, js in options if js]
                if not options:
                    self.skipped["align_no_negative"] += 1
                    return
                i, candidates = rng.choice(options)
                j = rng.choice(candidates)
            xw, yw = view.src_words[i].text, view.tgt_words[j].text
            key = (xw, yw, label) if view.src_lang <= view.tgt_lang else (yw, xw, label)
            if key not in stated:
                stated.add(key)
                break
        else:
            self.skipped["align_repeated"] += 1
            return
        prompt, answer = self.settings.templates.align(
            *self._names(view), view.src, view.tgt, xw, yw, label
        )
        yield Sample("align", view.src_lang, view.tgt_lang, prompt, answer)

    def _hint(self, rng: random.Random, view: AlignedPair) -> Iterator[Sample]:
        config = self.settings.hint
        links = qualifying_links(view, config.links, config.min_consistency)
        if not links:
            self.skipped["hint_no_links"] += 1
            return
        chosen = sorted(rng.sample(links, min(config.max_hints, len(links))))
        hints = [(view.src_words[i].text, view.tgt_words[j].text) for i, j in chosen]
        prompt, answer = self.settings.templates.hint(*self._names(view), view.src, view.tgt, hints)
        yield Sample("hint", view.src_lang, view.tgt_lang, prompt, answer)

    def _revise(self, rng: random.Random, view: AlignedPair) -> Iterator[Sample]:
        config = self.settings.revise
        links = qualifying_links(view, config.links, config.min_consistency)
        present = {w.text.lower() for w in view.tgt_words}
        pool = [w for w in self._pools.get(view.tgt_lang, []) if w.lower() not in present]
        if not links or not pool:
            self.skipped["revise_no_links" if not links else "revise_no_pool"] += 1
            return
        _, j = rng.choice(links)
        word, wrong = view.tgt_words[j], rng.choice(pool)
        revised = view.tgt[: word.start] + wrong + view.tgt[word.end :]
        prompt, answer = self.settings.templates.revise(
            *self._names(view), view.src, revised, wrong, word.text
        )
        yield Sample("revise", view.src_lang, view.tgt_lang, prompt, answer)

    def _remember(self, pair: AlignedPair) -> None:
        """Add the pair's content words to the bounded per-language pools of wrong words."""
        size = self.settings.revise.pool_size
        for lang, words in ((pair.src_lang, pair.src_words), (pair.tgt_lang, pair.tgt_words)):
            pool = self._pools.setdefault(lang, [])
            for word in words:
                if not is_content(word.text):
                    continue
                if len(pool) < size:
                    pool.append(word.text)
                else:
                    position = self._pool_pos.get(lang, 0)
                    pool[position] = word.text
                    self._pool_pos[lang] = (position + 1) % size
