"""The new user's flows end to end (slow): ``scripts/own-data-flows`` runs train, embed,
evaluate, index and search on an image folder and on a 200-line text file through the real
command line. Every command must end in a result (rc 0) or a one-line error (rc 2)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _blocks(transcript: str) -> list[tuple[str, list[str], int]]:
    """(command, output lines, rc) of each ``$ contrastkit ...`` block."""
    out = []
    for block in transcript.split("$ contrastkit ")[1:]:
        lines = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("## ")]
        rc = re.fullmatch(r"\[rc (\d+)\]", lines[-1].strip())
        assert rc, f"no exit status after: {lines[0]}"
        out.append((lines[0], lines[1:-1], int(rc[1])))
    return out


@pytest.mark.slow
def test_image_folder_and_small_text_flows_end_in_results_or_one_line_errors(tmp_path):
    ck = Path(sys.executable).with_name("contrastkit")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "own-data-flows"), str(tmp_path), str(ck)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    transcript = proc.stdout + proc.stderr
    print(transcript)
    assert "Traceback" not in transcript
    blocks = _blocks(proc.stdout)
    assert [b[0].split()[0] for b in blocks] == [
        "train",
        "embed",
        "evaluate",
        "index",
        "search",
    ] * 2
    for command, lines, rc in blocks:
        assert rc in (0, 2), f"{command}: rc {rc}\n" + "\n".join(lines)
        if rc == 2:
            errors = [ln for ln in lines if not ln.startswith("note:")]
            assert len(errors) == 1 and errors[0].startswith("error: "), (command, lines)
    by = {(i // 5, b[0].split()[0]): b for i, b in enumerate(blocks)}
    # the flows that must work: training both, and embed + evaluate on the image folder's
    # held-out test part, embed of the text file, index + search with the trained text encoder
    for key in [
        (0, "train"),
        (0, "embed"),
        (0, "evaluate"),
        (1, "train"),
        (1, "embed"),
        (1, "index"),
        (1, "search"),
    ]:
        assert by[key][2] == 0, by[key]
    assert any("held out" in ln for ln in by[(0, "train")][1])
