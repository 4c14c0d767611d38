"""kb's benchmark suite (see bench/README.md): build, query latency and HTTP load on the real corpus."""
