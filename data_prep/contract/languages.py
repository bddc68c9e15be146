"""ISO 639-1 codes of every OPUS-100 language and the English names used in prompts.

The names are what the instruction templates print ("Translate from German to
English."), so they are part of the data: change one and the prompts change. A
recipe may override or add names with its `language_names` mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# OPUS-100 covers English plus these 99 languages (Zhang et al., 2020).
OPUS100_LANGUAGES: dict[str, str] = {
    "af": "Afrikaans", "am": "Amharic", "an": "Aragonese", "ar": "Arabic",
    "as": "Assamese", "az": "Azerbaijani", "be": "Belarusian", "bg": "Bulgarian",
    "bn": "Bengali", "br": "Breton", "bs": "Bosnian", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German",
    "dz": "Dzongkha", "el": "Greek", "en": "English", "eo": "Esperanto",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "fy": "Western Frisian", "ga": "Irish",
    "gd": "Scottish Gaelic", "gl": "Galician", "gu": "Gujarati", "ha": "Hausa",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "id": "Indonesian", "ig": "Igbo", "is": "Icelandic",
    "it": "Italian", "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh",
    "km": "Khmer", "kn": "Kannada", "ko": "Korean", "ku": "Kurdish",
    "ky": "Kyrgyz", "li": "Limburgish", "lt": "Lithuanian", "lv": "Latvian",
    "mg": "Malagasy", "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian",
    "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Burmese",
    "nb": "Norwegian Bokmål", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "oc": "Occitan", "or": "Odia", "pa": "Punjabi",
    "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "rw": "Kinyarwanda", "se": "Northern Sami", "sh": "Serbo-Croatian",
    "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian",
    "sr": "Serbian", "sv": "Swedish", "ta": "Tamil", "te": "Telugu",
    "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tr": "Turkish",
    "tt": "Tatar", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu",
    "uz": "Uzbek", "vi": "Vietnamese", "wa": "Walloon", "xh": "Xhosa",
    "yi": "Yiddish", "yo": "Yoruba", "zh": "Chinese", "zu": "Zulu",
}  # fmt: skip

# The default 24 languages of the supervised grid: OPUS-100 languages absent from
# BLOOM's ROOTS pre-training corpus. The paper's exact list could not be checked
# (see docs/method.md); this is a documented default, overridable in a recipe.
UNSEEN_SUPERVISED: tuple[str, ...] = (
    "af", "am", "be", "cy", "ga", "gd", "gl", "ha", "ka", "kk", "km", "ky",
    "li", "my", "nb", "nn", "oc", "se", "si", "tg", "tk", "tt", "ug", "uz",
)  # fmt: skip


class UnknownLanguageError(ValueError):
    """A language code that has no prompt name."""


def pair_codes(pair: str) -> tuple[str, str] | None:
    """`de-en` -> ("de", "en"); None unless it is two different codes joined by "-". The
    one check of a direction's name, for recipes, grids and `data_prep split`."""
    codes = pair.split("-")
    if len(codes) != 2 or codes[0] == codes[1] or not all(codes):
        return None
    return codes[0], codes[1]


def unknown_codes(codes: Iterable[str], overrides: Mapping[str, str] | None = None) -> list[str]:
    """The codes (sorted, once each) that have no prompt name: neither OPUS-100's nor one
    given in `overrides` (a recipe's or grid's `language_names`)."""
    return sorted(set(codes) - set(OPUS100_LANGUAGES) - set(overrides or ()))


def language_name(code: str, overrides: Mapping[str, str] | None = None) -> str:
    """The English name of `code` for prompts; `overrides` (from a recipe) win."""
    if overrides and code in overrides:
        return overrides[code]
    try:
        return OPUS100_LANGUAGES[code]
    except KeyError:
        raise UnknownLanguageError(
            f"unknown language code {code!r}: not an OPUS-100 language; add it to the "
            f"recipe's `language_names` mapping (e.g. language_names: {{{code}: Name}})"
        ) from None
