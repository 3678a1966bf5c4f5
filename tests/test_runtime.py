"""Process settings: oneDNN's per-shape caches are bounded unless the user set them."""

from lartpcnet.runtime import ONEDNN_CACHE_CAPACITY, configure_malloc, configure_onednn_caches


def test_malloc_setting_reports_whether_it_applied():
    assert isinstance(configure_malloc(), bool)


def test_onednn_caches_bounded_but_user_setting_kept(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "7")
    configure_onednn_caches()
    import os

    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(ONEDNN_CACHE_CAPACITY)
    assert os.environ["LRU_CACHE_CAPACITY"] == "7"
