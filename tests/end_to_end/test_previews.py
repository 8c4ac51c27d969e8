"""One picture of one scan: `view`, `watch` on a complete file and `convert --preview` agree.

They share one rule for the scan shape (the reader's plan), the orientation
(what ``hs.load`` shows) and the bright-field aperture (the mean of frames spread
over the whole scan).
"""

from __future__ import annotations

import numpy as np
import pytest

from rsciio_mib_plugin.cli import main
from rsciio_mib_plugin.cli.demo import write_demo
from rsciio_mib_plugin.live.preview import LivePreview
from rsciio_mib_plugin.reader.aperture import aperture, disc_mask
from rsciio_mib_plugin.reader.preview import bright_field


@pytest.fixture
def pixel_triggered(tmp_path):
    """A pixel-triggered scan (the .hdr has no scan shape) whose .hdr is spelled in capitals."""
    path = write_demo(tmp_path, scan=(12, 16), frame=(64, 256))
    path.with_suffix(".hdr").rename(path.with_suffix(".HDR"))
    return path


def test_view_watch_and_convert_preview_draw_one_bright_field(pixel_triggered, tmp_path, capsys):
    import hyperspy.api as hs

    path = pixel_triggered
    assert main(["view", str(path), "-o", str(tmp_path / "view.png")]) == 0
    watch = ["watch", str(path), "--preview", str(tmp_path / "watch.png"), "--timeout", "0.5", "--interval", "0"]
    assert main(watch) == 0
    assert main(["convert", str(path), "-o", str(tmp_path / "out"), "--preview"]) == 0
    capsys.readouterr()

    # view and watch on the complete file draw the same picture, pixel for pixel
    assert (tmp_path / "view.png").read_bytes() == (tmp_path / "watch.png").read_bytes()
    assert (tmp_path / "out" / "demo_scan_preview.png").stat().st_size > 0

    mean, vbf, disc = bright_field(path)
    archive = hs.load(tmp_path / "out" / "demo_scan.zspy", lazy=True)
    summary = archive.metadata.Summaries.virtual_bright_field
    np.testing.assert_array_equal(summary.image, vbf)
    assert (summary.centre_row, summary.centre_col, summary.radius) == disc

    # the scan shape is the reader's (line gaps in the frame times), the orientation hs.load's
    s = hs.load(path)
    assert vbf.shape == s.data.shape[:2] == (12, 16)
    np.testing.assert_array_equal(vbf, (s.data * disc_mask(s.data.shape[-2:], disc)).sum(axis=(-2, -1)))
    # the aperture sits on the whole scan's mean disc
    whole = aperture(s.data.mean(axis=(0, 1)))
    assert np.hypot(disc[0] - whole[0], disc[1] - whole[1]) < 0.5


def test_watch_while_growing_shows_what_hs_load_would(pixel_triggered, tmp_path):
    """Half the frames written: the live picture has the complete lines, the right way up."""
    import hyperspy.api as hs

    full = pixel_triggered.read_bytes()
    frame_bytes = len(full) // (12 * 16)
    growing = tmp_path / "growing" / "demo_scan.mib"
    growing.parent.mkdir()
    growing.write_bytes(full[: frame_bytes * (5 * 16 + 7)])  # five lines and a bit
    (growing.parent / "demo_scan.HDR").write_bytes(pixel_triggered.with_suffix(".HDR").read_bytes())
    s = hs.load(pixel_triggered)

    from rsciio_mib_plugin import load_mib_data

    frames = load_mib_data(growing, return_mmap=False)  # file order
    live = LivePreview(growing, frames.shape[1:])
    live.add(0, frames)
    image = live.image()
    assert image.shape == (5, 16)
    expected = (s.data[:5] * live.mask).sum(axis=(-2, -1))
    np.testing.assert_array_equal(image, expected)
    np.testing.assert_allclose(live.total / live.frames, s.data.reshape(-1, 64, 256)[: 5 * 16 + 7].mean(axis=0))
    assert live.save(tmp_path / "live.png", "growing").stat().st_size > 0


def test_watch_places_frames_by_number(tmp_path):
    """A recording with lost frames: the live picture leaves their positions empty, later frames in place."""
    from rsciio_mib_plugin import write_mib
    from rsciio_mib_plugin.live import follow

    data = np.random.default_rng(3).integers(1, 4096, size=(4, 8, 16, 256), dtype=np.uint16)
    full = write_mib(tmp_path / "full.mib", data, hdr={"ScanX": 8, "ScanY": 4})
    raw = full.read_bytes()
    size = len(raw) // 32
    path = tmp_path / "scan.mib"
    path.write_bytes(b"".join(raw[i * size : (i + 1) * size] for i in range(32) if i not in (9, 10)))
    path.with_suffix(".hdr").write_bytes(full.with_suffix(".hdr").read_bytes())
    live = None
    with pytest.warns(Warning):
        for first, frames in follow(path, timeout=0.5):
            live = live or LivePreview(path, frames.shape[1:])
            live.add(first, frames)
        image = live.image()
    assert image.shape == (4, 8)
    assert np.isnan(image.ravel()[[9, 10]]).all()
    expected = (data[..., ::-1, :] * live.mask).sum(axis=(-2, -1)).astype(float).ravel()
    known = np.delete(np.arange(32), [9, 10])
    np.testing.assert_array_equal(image.ravel()[known], expected[known])


def _texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in [ax.title, ax.xaxis.label, ax.yaxis.label]) + (
        fig._suptitle.get_text() if fig._suptitle else ""
    )


def test_pictures_say_what_they_show():
    """Issue 25, item 7: no legend over the data; integer ticks on a small scan; a stack drawn as
    counts per frame; no aperture where no direct beam is found, saying so; positions not yet
    acquired in their own colour, said; the colour bar names its logarithm; no label cut off."""
    import matplotlib.colors

    from rsciio_mib_plugin.reader.preview import NOT_YET, preview_figure

    rng = np.random.default_rng(7)
    beam = rng.poisson(2, (128, 256)).astype(float)
    beam[50:80, 110:140] += 60
    disc = aperture(beam)
    vbf = rng.random((3, 5))
    vbf[2, 2:] = np.nan
    fig = preview_figure(beam, vbf, disc, "scan.mib")
    fig.canvas.draw()
    pattern, bright = fig.axes[:2]  # then their colour bars
    assert pattern.get_legend() is None and len(pattern.patches) == 1  # the aperture, explained in the title
    assert "bright-field aperture (cyan): r = " in pattern.get_title()
    assert "log10(1 + mean counts)" in _texts(fig)
    for ticks in (bright.get_xticks(), bright.get_yticks()):
        assert np.allclose(ticks, np.round(ticks))
    assert "3 positions not yet acquired" in bright.get_title()
    image = bright.get_images()[0]
    assert matplotlib.colors.to_hex(image.cmap.get_bad()) == NOT_YET
    flat = rng.poisson(5, (128, 256)).astype(float)  # a flat field or a test pattern: no direct beam
    fig = preview_figure(flat, vbf[0], aperture(flat), "stack.mib")
    pattern, frames = fig.axes[:2]
    assert not pattern.patches and "no direct beam found" in pattern.get_title()
    assert frames.lines and not frames.get_images() and frames.get_xlabel() == "frame"  # a stack: counts by frame
    square = rng.poisson(2, (256, 256)).astype(float)  # a square pattern beside a wide scan cut "kx (px)" off
    square[110:150, 110:150] += 60
    for picture in (fig, preview_figure(square, rng.random((24, 32)), aperture(square), "demo_scan.mib")):
        picture.canvas.draw()
        window = picture.bbox
        for ax in picture.axes:  # every label inside the picture
            for label in (ax.xaxis.label, ax.yaxis.label, ax.title):
                box = label.get_window_extent()
                assert box.x0 >= window.x0 - 1 and box.x1 <= window.x1 + 1 and box.y0 >= window.y0 - 1, label
