"""Route templates as data: one ``<code>-v<version>.toml`` per template version, read and
validated by ``models.template_files`` (the format is described there)."""
