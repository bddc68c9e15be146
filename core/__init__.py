"""The shared core that data_prep, training and eval rest on, and nothing else imports
from them: typed YAML configs with `key=value` overrides and `ConfigError`
(`typed_config`), atomic files and folders and content hashes (`fileio`), and
distributed helpers: rank/world discovery, clean teardown, /dev/shm cleanup (`dist`).
"""
