"""The commands: one module per command, the orchestration of reads, writes and the
journal. Each is a plain function of explicit values (a provider built once by the CLI,
settings, options) returning a result for a view."""
