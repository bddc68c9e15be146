"""The shared core that data_prep, training and eval rest on; it imports none of them.

- `typed_config`: dataclass configs from YAML with `key=value` overrides, `ConfigError`;
- `fileio`: atomic files and folders, content hashes;
- `dist`: rank/world discovery before init, process-group set-up, clean teardown,
  /dev/shm cleanup;
- `hub`: model and tokenizer sources checked up front (local folder or hub name, offline);
- `resources`: shipped recipes, grids and configs found by name in any install.
"""
