"""Containers and images: the Docker driver, the bootstrapped base, the supplied CPythons, the hash-locked
wheelhouse, provisioned vendor images, and the toolchain images built from docker/ on them."""
