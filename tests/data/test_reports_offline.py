"""Reports an auditor opens render complete with no network: no external script, stylesheet or import.

Data Docs are the case that failed (GX loads Bootstrap, bootstrap-table, jQuery and Vega from CDNs,
so offline the index listed no validation results); every HTML page the validate stage writes is
scanned, and the index must list each validation result as static HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hypomimia.config.validate import ValidateConfig
from hypomimia.lineage.offline import external_refs, offline_page
from hypomimia.stages.validate import run
from tests.helpers_validate import make_valid


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("offline")
    ingest, tubes = make_valid(root)
    return run(ValidateConfig(), ingest, tubes, root / "validate").data_docs_index.parent


def test_every_data_docs_page_is_self_contained(data_docs: Path):
    pages = sorted(data_docs.rglob("*.html"))
    assert len(pages) >= 11  # index + 5 suites + 5 validation results
    files = [*pages, *data_docs.rglob("*.css")]  # GX's own stylesheet pulled its logo from S3
    offenders = {str(p.relative_to(data_docs)): external_refs(p.read_text()) for p in files}
    assert not {k: v for k, v in offenders.items() if v}
    for p in pages:
        text = p.read_text()
        assert 'id="hypomimia-offline"' in text and "bootstrapTable(" not in text


def test_the_index_lists_every_validation_result_without_javascript(data_docs: Path):
    index = (data_docs / "index.html").read_text()
    links = re.findall(r'<a href="(validations/[^"]+\.html)">', index)
    assert sorted(Path(link).parts[1] for link in links) == [
        "facetubes",
        "folds",
        "ingest",
        "leakage",
        "manifest",
    ]
    assert all((data_docs / link).is_file() for link in links)
    assert index.count("fa-check-circle") >= 5  # the status column, drawn by the shipped stylesheet


def test_external_references_are_found_and_removed():
    page = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/b.css">'
        '<script src="//cdn.example/jquery.js"></script><style>@import url("https://x/y.css");</style>'
        '<link rel="shortcut icon" href="./static/favicon.ico"></head><img src="https://x/logo.png">'
        "<body><script>$('#t').bootstrapTable({})</script><script>var local = 1;</script></body></html>"
    )
    assert len(external_refs(page)) == 5  # link, script, @import (+ its url()), img
    clean = offline_page(page, css="body{}")
    assert external_refs(clean) == []
    assert "./static/favicon.ico" in clean and "var local = 1;" in clean and "bootstrapTable" not in clean
