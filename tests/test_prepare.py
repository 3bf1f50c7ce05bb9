"""Tests of the dataset tool ``zoo.data.prepare`` (python -m zoo.data.prepare). Offline and fast."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import PIL.Image
import pytest

from zoo.core.errors import ConfigError
from zoo.training.config import validate
from zoo.data import DatasetError, open_dataset
from zoo.data.prepare.process import Processor
from zoo.data.prepare import format_summary, prepare_dataset

from conftest import ROOT, compose_cfg, write_fake_cifar


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _rand(h, w, c=3, seed=0):
    rnd = np.random.RandomState(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    return rnd.randint(0, 256, size=shape, dtype=np.uint8)


def _save(path, array, mode=None, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PIL.Image.fromarray(array, mode).save(path, **kw) if mode else PIL.Image.fromarray(array).save(path, **kw)
    return array


def _hwc(chw):
    return np.asarray(chw).transpose(1, 2, 0)


def _leftovers(parent):
    """Hidden temporaries the tool might have left next to dest."""
    return [f for f in os.listdir(parent) if f.startswith(".")]


def _labelled_folder(root, n=5, res=8):
    """n RGB images in nested folders + dataset.json int labels; returns (sorted relpaths, arrays, labels)."""
    rels = [f"b/img{i}.png" if i % 2 else f"a/sub/img{i}.png" for i in range(n)]
    arrays = {r: _save(os.path.join(root, *r.split("/")), _rand(res, res, seed=i)) for i, r in enumerate(rels)}
    labels = {r: (i * 3) % 4 for i, r in enumerate(rels)}
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump({"labels": [[r, labels[r]] for r in rels]}, f)
    order = sorted(rels)
    return order, [arrays[r] for r in order], [labels[r] for r in order]


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------

def test_folder_to_zip_round_trip(tmp_path):
    src = str(tmp_path / "src")
    order, arrays, labels = _labelled_folder(src)
    (tmp_path / "src" / "notes.txt").write_text("not an image")
    dest = str(tmp_path / "out" / "data.zip")
    s = prepare_dataset(src, dest)
    assert s["images"] == 5 and s["skipped"] == [] and s["resolution"] == 8 and s["channels"] == 3
    assert s["labels"] is True and s["label_dim"] == 4 and s["ignored_files"] == 1 and s["source_kind"] == "folder"
    assert s["dest"] == dest and s["format"] == "zip"

    with zipfile.ZipFile(dest) as zf:
        infos = zf.infolist()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        names = sorted(i.filename for i in infos)
        assert names == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png",
                         "00000/img00000003.png", "00000/img00000004.png", "dataset.json"]
        doc = json.loads(zf.read("dataset.json"))
        assert doc == {"labels": [[f"00000/img{i:08d}.png", labels[i]] for i in range(5)]}
        png = PIL.Image.open(io.BytesIO(zf.read("00000/img00000000.png")))
        assert png.format == "PNG" and png.mode == "RGB"
    assert _leftovers(str(tmp_path / "out")) == []

    ds = open_dataset("zip", dest, use_labels=True)
    assert len(ds) == 5 and ds.resolution == 8 and ds.label_dim == 4
    for i in range(5):
        np.testing.assert_array_equal(_hwc(ds.get_image(i)), arrays[i])
        assert int(np.argmax(ds.get_label(i))) == labels[i]
    text = format_summary(s)
    assert "wrote 5 images" in text and dest in text and "8x8, 3 channels" in text and "labels:   yes" in text

    # the same settings give byte-identical zips (fixed timestamps), with or without worker processes
    again = str(tmp_path / "again.zip")
    prepare_dataset(src, again, resolution=8, workers=2)
    assert open(again, "rb").read() == open(dest, "rb").read()


def test_zip_source_to_folder_with_vector_labels(tmp_path):
    src = str(tmp_path / "src.zip")
    arrays = [_rand(4, 4, seed=10 + i) for i in range(3)]
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, a in enumerate(arrays):
            buf = io.BytesIO()
            PIL.Image.fromarray(a).save(buf, format="png")
            zf.writestr(f"x/{i}.png", buf.getvalue())
        zf.writestr("__MACOSX/x/._0.png", b"AppleDouble junk")
        zf.writestr("dataset.json", json.dumps({"labels": [[f"x/{i}.png", [i, 0.5]] for i in range(3)]}))
    dest = str(tmp_path / "folder_out")
    s = prepare_dataset(src, dest)
    assert s["source_kind"] == "zip" and s["format"] == "folder" and s["images"] == 3 and s["skipped"] == []
    assert sorted(os.listdir(dest)) == ["00000", "dataset.json"]
    assert sorted(os.listdir(os.path.join(dest, "00000"))) == [f"img{i:08d}.png" for i in range(3)]
    doc = json.load(open(os.path.join(dest, "dataset.json")))
    assert doc["labels"][2] == ["00000/img00000002.png", [2.0, 0.5]]
    ds = open_dataset("folder", dest, use_labels=True)
    for i in range(3):
        np.testing.assert_array_equal(_hwc(ds.get_image(i)), arrays[i])
        np.testing.assert_allclose(ds.get_label(i), [i, 0.5])
    # labels=false drops them
    s = prepare_dataset(src, str(tmp_path / "nolabels.zip"), labels=False)
    assert s["labels"] is False
    with zipfile.ZipFile(str(tmp_path / "nolabels.zip")) as zf:
        assert json.loads(zf.read("dataset.json")) == {"labels": None}


def test_resize_matches_pil_and_filters_differ(tmp_path):
    src = str(tmp_path / "src")
    a = _save(os.path.join(src, "a.png"), _rand(16, 16, seed=3))
    out = {}
    for f, resample in (("lanczos", PIL.Image.Resampling.LANCZOS), ("box", PIL.Image.Resampling.BOX)):
        dest = str(tmp_path / f"{f}.zip")
        s = prepare_dataset(src, dest, resolution=8, resize_filter=f)
        assert s["resize_filter"] == f and s["resolution"] == 8 and s["stretched"] == 0
        out[f] = _hwc(open_dataset("zip", dest).get_image(0))
        np.testing.assert_array_equal(out[f], np.asarray(PIL.Image.fromarray(a).resize((8, 8), resample)))
    assert not np.array_equal(out["box"], out["lanczos"])
    # box is the 2x2 mean here, to PIL's fixed-point rounding (what NVIDIA's FFHQ-256 data used)
    mean = a.reshape(8, 2, 8, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out["box"] - mean).max() <= 1


# ---------------------------------------------------------------------------------------------
# bad inputs, strict, atomic output
# ---------------------------------------------------------------------------------------------

def _corrupt_folder(root):
    good = [_save(os.path.join(root, f"good{i}.png"), _rand(8, 8, seed=20 + i)) for i in range(3)]
    _save(os.path.join(root, "sub", "truncated.png"), _rand(16, 16, seed=5), compress_level=0)
    path = os.path.join(root, "sub", "truncated.png")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])  # header fine, pixel data cut off
    with open(os.path.join(root, "notes.jpg"), "w") as f:
        f.write("this is text, not a JPEG")
    return good


def test_corrupt_images_are_skipped_and_named(tmp_path):
    src = str(tmp_path / "src")
    good = _corrupt_folder(src)
    dest = str(tmp_path / "out.zip")
    s = prepare_dataset(src, dest, resolution=8)
    assert s["images"] == 3 and s["considered"] == 5
    skipped = {d["name"]: d["reason"] for d in s["skipped"]}
    assert set(skipped) == {"notes.jpg", "sub/truncated.png"}
    assert "truncated" in skipped["sub/truncated.png"] and "not an image" in skipped["notes.jpg"]
    text = format_summary(s)
    assert "skipped:  2" in text and "notes.jpg" in text and "sub/truncated.png" in text
    ds = open_dataset("zip", dest)
    for i in range(3):
        np.testing.assert_array_equal(_hwc(ds.get_image(i)), good[i])


@pytest.mark.parametrize("resolution", [None, 8])  # header scan (None) and decode-time failures (8)
def test_strict_stops_and_leaves_nothing(tmp_path, resolution):
    src = str(tmp_path / "src")
    _corrupt_folder(src)
    for dest in (str(tmp_path / "out" / "strict.zip"), str(tmp_path / "out" / "strict_dir")):
        with pytest.raises(DatasetError, match="notes.jpg.*strict=true"):
            prepare_dataset(src, dest, resolution=resolution, channels=3, strict=True)
        assert not os.path.exists(dest)
        assert not os.path.exists(str(tmp_path / "out"))  # the parent it created is gone again


def test_interrupt_removes_the_temporary(tmp_path, monkeypatch):
    src = str(tmp_path / "src")
    _labelled_folder(src, n=5)
    dest = str(tmp_path / "out.zip")
    calls = []
    real = Processor.__call__

    def flaky(self, job):
        calls.append(job[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, job)

    monkeypatch.setattr(Processor, "__call__", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(src, dest)
    assert not os.path.exists(dest) and _leftovers(str(tmp_path)) == []


def test_overwrite_and_existing_dest(tmp_path):
    src = str(tmp_path / "src")
    _labelled_folder(src, n=2)
    dest = str(tmp_path / "out.zip")
    open(dest, "wb").write(b"old")
    with pytest.raises(DatasetError, match="already exists.*overwrite=true"):
        prepare_dataset(src, dest)
    assert open(dest, "rb").read() == b"old"
    prepare_dataset(src, dest, overwrite=True)
    assert len(open_dataset("zip", dest)) == 2
    folder = tmp_path / "out_dir"
    folder.mkdir()  # an existing empty folder is fine
    prepare_dataset(src, str(folder))
    (folder / "extra.txt").write_text("x")
    with pytest.raises(DatasetError, match="already exists"):
        prepare_dataset(src, str(folder), max_images=1)
    prepare_dataset(src, str(folder), max_images=1, overwrite=True)
    assert sorted(os.listdir(folder)) == ["00000", "dataset.json"] and len(open_dataset("folder", str(folder))) == 1
    assert _leftovers(str(tmp_path)) == []
    with pytest.raises(ConfigError, match="inside the source"):
        prepare_dataset(src, os.path.join(src, "out"))


def test_missing_labels_and_no_images(tmp_path):
    src = tmp_path / "src"
    _labelled_folder(str(src), n=3)
    _save(str(src / "unlabelled.png"), _rand(8, 8))
    with pytest.raises(DatasetError, match="none for 1 image.*unlabelled.png.*labels=false"):
        prepare_dataset(str(src), str(tmp_path / "o.zip"))
    assert prepare_dataset(str(src), str(tmp_path / "o.zip"), labels=False)["images"] == 4
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image files"):
        prepare_dataset(str(tmp_path / "empty"), str(tmp_path / "e.zip"))
    with pytest.raises(DatasetError, match="does not exist"):
        prepare_dataset(str(tmp_path / "nope"), str(tmp_path / "e.zip"))


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------

def test_center_crop_and_plain_resize_of_non_square(tmp_path):
    src = str(tmp_path / "src")
    wide = _save(os.path.join(src, "wide.png"), _rand(8, 12, seed=1))    # 12 wide, 8 high
    tall = _save(os.path.join(src, "tall.png"), _rand(12, 8, seed=2))    # 8 wide, 12 high
    dest = str(tmp_path / "crop.zip")
    s = prepare_dataset(src, dest, resolution=8, transform="center-crop")
    assert s["images"] == 2 and s["stretched"] == 0
    ds = open_dataset("zip", dest)
    np.testing.assert_array_equal(_hwc(ds.get_image(0)), tall[2:10, :])   # tall.png sorts first
    np.testing.assert_array_equal(_hwc(ds.get_image(1)), wide[:, 2:10])

    dest = str(tmp_path / "plain.zip")
    s = prepare_dataset(src, dest, resolution=8)  # no transform: stretched, as NVIDIA's tool does
    assert s["stretched"] == 2 and "stretched" in format_summary(s)
    want = np.asarray(PIL.Image.fromarray(wide).resize((8, 8), PIL.Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(_hwc(open_dataset("zip", dest).get_image(1)), want)

    with pytest.raises(DatasetError, match="not square.*wide.png.*resolution="):
        prepare_dataset(src, str(tmp_path / "keep.zip"))  # resolution=null keeps sizes: must be square
    assert not os.path.exists(str(tmp_path / "keep.zip"))


def test_center_crop_wide_letterbox(tmp_path):
    src = str(tmp_path / "src")
    a = _save(os.path.join(src, "a_ok.png"), _rand(10, 16, seed=7))     # 16x10: fits an 8:4 box
    _save(os.path.join(src, "b_narrow.png"), _rand(8, 6, seed=8))      # 6 wide < 8: too small
    _save(os.path.join(src, "c_wide.png"), _rand(4, 16, seed=9))       # 16x4 is wider than 8:4
    dest = str(tmp_path / "wide.zip")
    s = prepare_dataset(src, dest, resolution="8x4", transform="center-crop-wide", resize_filter="box")
    assert s["images"] == 1 and s["resolution"] == 8 and s["letterbox"] == [8, 4]
    reasons = {d["name"]: d["reason"] for d in s["skipped"]}
    assert set(reasons) == {"b_narrow.png", "c_wide.png"} and all("too small" in r for r in reasons.values())
    out = _hwc(open_dataset("zip", dest).get_image(0))
    assert out.shape == (8, 8, 3)
    # the 16x10 source keeps its centre 16x8 rows (the 8:4 aspect), box-resized to 8x4, in rows 2..5
    want = np.asarray(PIL.Image.fromarray(a[1:9]).resize((8, 4), PIL.Image.Resampling.BOX))
    np.testing.assert_array_equal(out[2:6], want)
    assert not out[:2].any() and not out[6:].any()
    with pytest.raises(DatasetError, match="b_narrow.png.*too small.*strict=true"):
        prepare_dataset(src, str(tmp_path / "s.zip"), resolution="8x4", transform="center-crop-wide", strict=True)


def test_option_errors(tmp_path):
    src = str(tmp_path / "src")
    _labelled_folder(src, n=1)
    dest = str(tmp_path / "o.zip")
    cases = [
        (dict(resolution=300), r"resolution: 300 is not a power of two.*256 or 512"),
        (dict(resolution=0), "not a power of two"),
        (dict(resolution="16x8"), "16x8 is not square"),
        (dict(resolution="256x192"), "not square.*center-crop-wide"),
        (dict(resolution="big"), "cannot parse"),
        (dict(transform="center-crop"), "needs an output size"),
        (dict(transform="center-crop-wide", resolution=8), r"resolution=8x6"),
        (dict(transform="zoom", resolution=8), "unknown transform"),
        (dict(resize_filter="bicubic"), "unknown filter"),
        (dict(max_images=0), "max_images"),
        (dict(channels=4), "channels"),
        (dict(source_kind="tfrecords"), "unknown source kind"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            prepare_dataset(src, dest, **kwargs)
    assert not os.path.exists(dest)
    assert prepare_dataset(src, dest, resolution="8x8")["resolution"] == 8  # NVIDIA's WxH spelling


def test_lsun_lmdb_is_refused_with_instructions(tmp_path):
    lmdb = tmp_path / "church_outdoor_train_lmdb"
    lmdb.mkdir()
    (lmdb / "data.mdb").write_bytes(b"\0" * 16)
    with pytest.raises(DatasetError, match="(?i)lmdb.*export the images first"):
        prepare_dataset(str(lmdb), str(tmp_path / "church.zip"))


# ---------------------------------------------------------------------------------------------
# channels
# ---------------------------------------------------------------------------------------------

def test_channels_gray_mixed_rgba_palette(tmp_path):
    gray = str(tmp_path / "gray")
    g = [_save(os.path.join(gray, f"{i}.png"), _rand(8, 8, c=1, seed=i)) for i in range(2)]
    s = prepare_dataset(gray, str(tmp_path / "gray.zip"))
    assert s["channels"] == 1 and s["mode"] == "L"
    ds = open_dataset("zip", str(tmp_path / "gray.zip"))
    assert ds.num_channels == 1
    np.testing.assert_array_equal(ds.get_image(1)[0], g[1])

    mixed = str(tmp_path / "mixed")
    lum = _save(os.path.join(mixed, "a_gray.png"), _rand(8, 8, c=1, seed=3))
    rgba = _save(os.path.join(mixed, "b_rgba.png"), _rand(8, 8, c=4, seed=4))
    PIL.Image.fromarray(_rand(8, 8, seed=5)).convert("P").save(os.path.join(mixed, "c_pal.png"))
    rgb = _save(os.path.join(mixed, "d_rgb.jpg"), _rand(8, 8, seed=6), quality=95)
    s = prepare_dataset(mixed, str(tmp_path / "mixed.zip"))
    assert s["channels"] == 3 and s["images"] == 4 and s["converted"] == {"L": 1, "RGBA": 1, "P": 1}
    assert "alpha dropped" in format_summary(s)
    ds = open_dataset("zip", str(tmp_path / "mixed.zip"))
    np.testing.assert_array_equal(_hwc(ds.get_image(0)), np.repeat(lum[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(_hwc(ds.get_image(1)), rgba[:, :, :3])
    pal = PIL.Image.open(os.path.join(mixed, "c_pal.png")).convert("RGB")
    np.testing.assert_array_equal(_hwc(ds.get_image(2)), np.asarray(pal))
    jpg = np.asarray(PIL.Image.open(os.path.join(mixed, "d_rgb.jpg")).convert("RGB"))
    np.testing.assert_array_equal(_hwc(ds.get_image(3)), jpg)
    assert rgb.shape == jpg.shape

    s = prepare_dataset(mixed, str(tmp_path / "forced.zip"), channels=1)
    assert s["channels"] == 1 and open_dataset("zip", str(tmp_path / "forced.zip")).num_channels == 1

    # 16-bit grayscale is scaled to 8 bits, not clipped
    deep = str(tmp_path / "deep")
    os.makedirs(deep)
    PIL.Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(os.path.join(deep, "w.png"))
    s = prepare_dataset(deep, str(tmp_path / "deep.zip"))
    assert s["channels"] == 1
    assert (open_dataset("zip", str(tmp_path / "deep.zip")).get_image(0) == 255).all()


# ---------------------------------------------------------------------------------------------
# CIFAR-10, max_images
# ---------------------------------------------------------------------------------------------




def test_cifar10_archive_and_folder_keep_labels(tmp_path):
    batches, rows, labels = write_fake_cifar(str(tmp_path / "raw"), per_batch=3, seed=1)
    images = rows.reshape(-1, 3, 32, 32)
    archive = str(tmp_path / "cifar-10-python.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    dest = str(tmp_path / "cifar10.zip")
    s = prepare_dataset(archive, dest)
    assert s["source_kind"] == "cifar10" and s["images"] == 15 and s["resolution"] == 32 and s["label_dim"] == 10
    ds = open_dataset("zip", dest, use_labels=True)
    assert len(ds) == 15
    for i in (0, 7, 14):
        np.testing.assert_array_equal(ds.get_image(i), images[i])
    got = [int(v) for v in np.argmax(ds.get_all_labels(), axis=1)]
    assert got == [int(v) for v in labels]
    doc = json.loads(zipfile.ZipFile(dest).read("dataset.json"))
    assert doc["labels"][3] == ["00000/img00000003.png", int(labels[3])]

    # the extracted folder (what data=cifar10 reads), max_images and the test split
    s = prepare_dataset(batches, str(tmp_path / "c4"), max_images=4)
    assert s["images"] == 4
    ds = open_dataset("folder", str(tmp_path / "c4"), use_labels=True)
    np.testing.assert_array_equal(ds.get_image(3), images[3])
    assert int(np.argmax(ds.get_label(3))) == labels[3]
    assert prepare_dataset(str(tmp_path / "raw"), str(tmp_path / "t.zip"), split="test")["images"] == 3


def test_max_images_takes_the_first_sorted(tmp_path):
    src = str(tmp_path / "src")
    arrays = {f"{i:02d}.png": _save(os.path.join(src, f"{i:02d}.png"), _rand(8, 8, seed=i)) for i in range(6)}
    dest = str(tmp_path / "o.zip")
    s = prepare_dataset(src, dest, max_images=4)
    assert s["images"] == 4 and s["considered"] == 4
    ds = open_dataset("zip", dest)
    for i in range(4):
        np.testing.assert_array_equal(_hwc(ds.get_image(i)), arrays[f"{i:02d}.png"])


# ---------------------------------------------------------------------------------------------
# config integration and the command line
# ---------------------------------------------------------------------------------------------

def test_ffhq_missing_file_prints_the_prepare_command(tmp_path):
    cfg = compose_cfg(overrides=["data=ffhq", "resolution=256", f"data.root={tmp_path}"])
    want = (f"python -m zoo.data.prepare source=/path/to/ffhq/images1024x1024 dest={tmp_path}/ffhq256.zip "
            f"resolution=256 resize_filter=box")
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert want in str(e.value)
    with pytest.raises(DatasetError) as e:
        open_dataset("ffhq", cfg.data.path, prepare_hint=cfg.data.prepare_hint)
    assert want in str(e.value) and str(e.value).count("zoo.data.prepare") == 1
    with pytest.raises(DatasetError) as e:  # without the config's hint: the reader's own advice
        open_dataset("ffhq", cfg.data.path)
    assert want in str(e.value)


def test_prepare_yaml_composes(tmp_path):
    cfg = compose_cfg("prepare", overrides=[f"source={tmp_path}", "dest=x.zip", "resolution=512x384",
                                            "transform=center-crop-wide"])
    assert cfg.resolution == "512x384" and cfg.resize_filter == "lanczos" and cfg.workers is None
    with pytest.raises(Exception):
        compose_cfg("prepare", overrides=["resolutoin=256"])  # typos fail at composition


def test_cli_subprocess(tmp_path):
    src = str(tmp_path / "src")
    _labelled_folder(src, n=3)
    _save(os.path.join(src, "big.png"), _rand(16, 16, seed=9))
    dest = str(tmp_path / "out.zip")
    work = tmp_path / "cwd"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.data.prepare", f"source={src}", f"dest={dest}", "resolution=8",
         "resize_filter=box", "labels=false", "progress=false", "workers=0"],
        cwd=str(work), env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote 4 images" in proc.stdout and dest in proc.stdout and "8x8" in proc.stdout
    assert len(open_dataset("zip", dest, use_labels=False)) == 4
    assert os.listdir(work) == []  # no Hydra output dirs or logs where it ran
