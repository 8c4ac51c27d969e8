"""``rsciio-mib demo``: a realistic scan written, loaded with plain ``hs.load`` and looked at."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingPackage
from .commands import preview

#: Dwell per scan position and the extra time the beam takes to fly back at
#: the end of each line: the gaps the timestamp rule finds (docs/format.md §10).
DEMO_DWELL_S = 0.001
DEMO_FLYBACK_S = 0.0005


def demo_scan(scan=(24, 32), frame=(256, 256), seed=0):
    """A realistic small 4D-STEM scan (12-bit counts): :func:`demo_frame_mean` with Poisson noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = np.empty(scan + frame, dtype=np.uint16)
    for j in range(scan[0]):
        for i in range(scan[1]):
            data[j, i] = np.minimum(rng.poisson(demo_frame_mean(j, i, scan, frame)), 4095)
    return data


def demo_frame_mean(j: int, i: int, scan=(24, 32), frame=(256, 256)):
    """The expected counts of the demo scan's frame at row ``j``, column ``i``.

    A direct-beam disc that shifts across the scan (as a field or thickness
    change would deflect it), six Bragg discs that appear in a grain on the
    right of the scan, a weak diffuse background.
    """
    import numpy as np

    (ny, nx), (rows, cols) = scan, frame
    y, x = np.ogrid[:rows, :cols]
    cy = rows / 2 + 6 * np.sin(2 * np.pi * j / ny)
    cx = cols / 2 + 6 * np.cos(2 * np.pi * i / nx)
    r2 = (y - cy) ** 2 + (x - cx) ** 2
    grain = 1 / (1 + np.exp(-(i - 0.6 * nx) / 1.5)) * (0.5 + 0.5 * np.cos(np.pi * j / ny) ** 2)
    # What the grain diffracts leaves the direct beam: bright-field contrast.
    expected = 120.0 * (1 - 0.5 * grain) * (r2 <= 18**2) + 30.0 * np.exp(-r2 / (2 * 60.0**2)) + 0.5
    for a in np.deg2rad(np.arange(0, 360, 60) + 15):
        by, bx = cy + 70 * np.sin(a), cx + 70 * np.cos(a)
        expected = expected + 60.0 * grain * (((y - by) ** 2 + (x - bx) ** 2) <= 9**2)
    return expected


def write_demo(folder, scan=(24, 32), frame=(256, 256)) -> Path:
    """Write the demo scan as a pixel-triggered acquisition: a ``.hdr`` without
    the scan shape (one frame per trigger), lines told apart by the flyback
    gaps in the frame timestamps."""
    import numpy as np

    from ..format.write import write_mib

    data = demo_scan(scan, frame)
    ny, nx = data.shape[:2]
    step = int(DEMO_DWELL_S * 1e9)
    times = np.arange(ny * nx, dtype=np.int64) * step + np.repeat(np.arange(ny), nx) * int(DEMO_FLYBACK_S * 1e9)
    times += np.datetime64("2026-01-15T10:30:00", "ns").astype(np.int64)
    hdr = {"ScanX": None, "ScanY": None, "Frames per Trigger": 1, "Trigger Start": "Rising Edge LVDS"}
    return write_mib(
        Path(folder) / "demo_scan.mib", data, counter_depth=12, exposure=DEMO_DWELL_S, timestamps=times, hdr=hdr
    )


def demo(args) -> int:
    import hyperspy.api as hs
    import numpy as np

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_demo(folder)
    print(f"wrote {path} and {path.with_suffix('.hdr')} (pixel trigger: the .hdr has no scan shape)")
    s = hs.load(path)
    print(s)
    print(f"io_plugin: {s.metadata.General.FileIO.Number_0.io_plugin}")
    print(f"scan shape rule: {s.original_metadata.mib_plugin.navigation_shape_rule}")
    print(f"data: {s.data.dtype}, {s.data.nbytes / 1e6:.1f} MB, total counts {int(s.data.sum())}")
    print(s.metadata)
    try:
        import pyxem  # noqa: F401
    except ImportError:
        print(f"skipped: {MissingPackage('the direct-beam step', 'pyxem', 'pyxem')}")
    else:
        shifts = s.get_direct_beam_position(method="center_of_mass", signal_slice=(88, 168, 88, 168))
        centre = np.asarray(shifts.data) + np.array(s.axes_manager.signal_shape) / 2
        print(
            "direct beam (pyxem centre of mass): x "
            f"{centre[..., 0].min():.1f}..{centre[..., 0].max():.1f} px, y "
            f"{centre[..., 1].min():.1f}..{centre[..., 1].max():.1f} px"
        )
    print(f"preview: {preview(path, folder / 'demo_preview.png', progress=args.progress)}")
    return 0
