"""Publishing and downloading artifacts: tarballs, manifests on disk, signatures, and OCI registries as a destination."""
