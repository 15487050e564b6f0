"""The remote build cache in an OCI registry: one fail-fast client, step entries and toolchain images."""
