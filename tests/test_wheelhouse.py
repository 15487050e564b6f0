"""The wheelhouse as an image build reads it: served on 127.0.0.1 for the build's length, then gone."""

from __future__ import annotations

import pytest
import requests

from pipelines.edges.containers.wheelhouse import served


def test_served_lists_and_serves_the_folder_then_stops(tmp_path):
    (tmp_path / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"wheel one")
    (tmp_path / "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"wheel two")
    with served(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        page = requests.get(url, timeout=10).text  # what pip --find-links reads
        assert 'href="six-1.17.0-py2.py3-none-any.whl"' in page and 'href="numpy-1.26.4' in page
        assert requests.get(url + "six-1.17.0-py2.py3-none-any.whl", timeout=10).content == b"wheel one"
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)
