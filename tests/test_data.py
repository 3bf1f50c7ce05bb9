"""Tests of zoo.data: readers, shapes, errors and the infinite sampler. Offline and fast."""
from __future__ import annotations

import io
import itertools
import json
import os
import pickle
import tarfile
import time
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from conftest import write_fake_cifar
from zoo.data import (
    DatasetError,
    InfiniteSampler,
    SHAPE_NAMES,
    ShapesDataset,
    ZipDataset,
    open_dataset,
    to_float,
    write_dataset,
)
from zoo.data.shapes import GENERATOR_VERSION, _draw_params, render_shapes


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _rand_images(n, res=8, channels=3, seed=0):
    rnd = np.random.RandomState(seed)
    return rnd.randint(0, 256, size=[n, channels, res, res], dtype=np.uint8)


def _save_png(path, chw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    a = chw.transpose(1, 2, 0)
    PIL.Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(path)


def _make_folder(root, images, names=None):
    names = names or [f"img{i:03d}.png" for i in range(len(images))]
    for name, im in zip(names, images):
        _save_png(os.path.join(root, *name.split("/")), im)
    return names


def _all_items(ds):
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs).numpy(), torch.stack(ys).numpy()


# ---------------------------------------------------------------------------------------------
# folder and zip readers
# ---------------------------------------------------------------------------------------------

def test_folder_reader_recursive_sorted(tmp_path):
    images = _rand_images(5, res=8)
    names = ["b/z.png", "a.png", "b/a/x.png", "c.png", "b/y.png"]
    _make_folder(tmp_path / "data", images, names)
    (tmp_path / "data" / "readme.txt").write_text("not an image")
    (tmp_path / "data" / ".hidden.png").write_bytes(b"junk")  # hidden files are skipped
    ds = open_dataset("folder", str(tmp_path / "data"))
    assert len(ds) == 5 and ds.name == "data"
    assert ds.image_shape == [3, 8, 8] and ds.resolution == 8 and ds.num_channels == 3
    assert ds.label_dim == 0 and not ds.has_labels and ds.label_shape == [0]
    assert ds.image_fnames == sorted(names)
    x, y = ds[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 8, 8)
    assert y.dtype == torch.float32 and y.shape == (0,)
    by_name = dict(zip(names, images))
    for i, f in enumerate(ds.image_fnames):
        np.testing.assert_array_equal(ds[i][0].numpy(), by_name[f])
    # 'image' picks the folder reader; resolution given and matching is fine
    assert len(open_dataset("image", str(tmp_path / "data"), resolution=8)) == 5


def test_folder_int_labels_onehot(tmp_path):
    images = _rand_images(4)
    _make_folder(tmp_path, images, ["s/a.png", "s/b.png", "c.png", "d.png"])
    # Backslash paths (written on Windows) are normalised to '/'.
    labels = [["s\\a.png", 2], ["s/b.png", 0], ["c.png", 4], ["d.png", 2]]
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels}))
    ds = open_dataset("folder", str(tmp_path), use_labels=True)
    assert ds.label_dim == 5 and ds.has_labels
    _, ys = _all_items(ds)
    assert ys.dtype == np.float32
    np.testing.assert_array_equal(ys.argmax(1), [4, 2, 2, 0])  # sorted: c, d, s/a, s/b
    np.testing.assert_array_equal(ys.sum(1), 1)
    # without use_labels the labels are ignored
    assert open_dataset("folder", str(tmp_path)).label_dim == 0


def test_folder_vector_labels(tmp_path):
    _make_folder(tmp_path, _rand_images(2), ["a.png", "b.png"])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["a.png", [0.5, -1.0, 2.0]], ["b.png", [1, 2, 3]]]}))
    ds = open_dataset("folder", str(tmp_path), use_labels=True)
    assert ds.label_dim == 3
    np.testing.assert_allclose(ds[0][1].numpy(), [0.5, -1.0, 2.0])
    np.testing.assert_allclose(ds[1][1].numpy(), [1, 2, 3])


def test_label_errors(tmp_path):
    _make_folder(tmp_path, _rand_images(2), ["a.png", "b.png"])
    with pytest.raises(DatasetError, match=r"dataset\.json.*use_labels=false"):
        open_dataset("folder", str(tmp_path), use_labels=True)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": None}))
    with pytest.raises(DatasetError, match=r"dataset\.json.*null"):
        open_dataset("folder", str(tmp_path), use_labels=True)
    assert len(open_dataset("folder", str(tmp_path))) == 2  # fine without labels
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["a.png", 1]]}))
    with pytest.raises(DatasetError, match=r"no label for 1 image.*b\.png"):
        open_dataset("folder", str(tmp_path), use_labels=True)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"dataset\.json.*not valid JSON"):
        open_dataset("folder", str(tmp_path), use_labels=True)


@pytest.mark.parametrize("compress", [False, True])
def test_zip_nvidia_layout(tmp_path, compress):
    images = _rand_images(7, res=16, seed=3)
    labels = [3, 1, 0, 3, 2, 1, 0]
    path = write_dataset(str(tmp_path / "set.zip"), images, labels, compress=compress)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert "00000/img00000000.png" in names and "00000/img00000006.png" in names
        assert json.loads(zf.read("dataset.json"))["labels"][1] == ["00000/img00000001.png", 1]
        kinds = {i.compress_type for i in zf.infolist()}
        assert kinds == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}
    for kind in ("zip", "image"):
        ds = open_dataset(kind, path, use_labels=True)
        assert isinstance(ds, ZipDataset) and ds.name == "set"
        xs, ys = _all_items(ds)
        np.testing.assert_array_equal(xs, images)
        np.testing.assert_array_equal(ys.argmax(1), labels)
        assert ds.label_dim == 4
    # unlabeled zip ({"labels": null})
    p2 = write_dataset(str(tmp_path / "nolab.zip"), images)
    ds2 = open_dataset("zip", p2)
    assert ds2.label_dim == 0 and len(ds2) == 7


def test_folder_to_zip_same_pixels(tmp_path):
    images = _rand_images(6, res=8, seed=5)
    folder = write_dataset(str(tmp_path / "folder"), images, labels=[0, 1, 2, 0, 1, 2])
    # zip the folder by hand (as a user would), compressed, same relative paths
    zpath = tmp_path / "folder.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, _, files in os.walk(folder):
            for f in files:
                full = os.path.join(root, f)
                zf.write(full, os.path.relpath(full, folder).replace(os.sep, "/"))
    a = open_dataset("folder", folder, use_labels=True)
    b = open_dataset("zip", str(zpath), use_labels=True)
    xa, ya = _all_items(a)
    xb, yb = _all_items(b)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(xa, images)
    assert a.image_fnames == b.image_fnames


def test_channel_modes(tmp_path):
    gray = _rand_images(3, channels=1, seed=1)
    _make_folder(tmp_path / "gray", gray)
    ds = open_dataset("folder", str(tmp_path / "gray"))
    assert ds.num_channels == 1 and ds.image_shape == [1, 8, 8]
    np.testing.assert_array_equal(_all_items(ds)[0], gray)
    # L mixed with RGBA and P: everything becomes RGB
    mixed = tmp_path / "mixed"
    _make_folder(mixed, gray[:1], ["a.png"])
    rgba = np.random.RandomState(0).randint(0, 256, [8, 8, 4], dtype=np.uint8)
    PIL.Image.fromarray(rgba, "RGBA").save(mixed / "b.png")
    PIL.Image.fromarray(rgba[:, :, :3]).convert("P").save(mixed / "c.png")
    ds = open_dataset("folder", str(mixed))
    assert ds.num_channels == 3
    xs, _ = _all_items(ds)
    assert xs.shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(xs[0], np.repeat(gray[0], 3, axis=0))  # L -> RGB replicates
    np.testing.assert_array_equal(xs[1], rgba[:, :, :3].transpose(2, 0, 1))  # alpha dropped


def test_mirror(tmp_path):
    images = _rand_images(3, seed=2)
    _make_folder(tmp_path, images)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [[f"img{i:03d}.png", i] for i in range(3)]}))
    ds = open_dataset("folder", str(tmp_path), mirror=True, use_labels=True)
    assert len(ds) == 6
    xs, ys = _all_items(ds)
    np.testing.assert_array_equal(xs[:3], images)
    np.testing.assert_array_equal(xs[3:], images[:, :, :, ::-1])
    np.testing.assert_array_equal(ys[3:], ys[:3])
    np.testing.assert_array_equal(ds.get_all_labels(), ys)  # labels without decoding images
    np.testing.assert_array_equal(ds[-1][0].numpy(), images[2, :, :, ::-1])
    with pytest.raises(IndexError):
        ds[6]


def test_max_size_deterministic():
    full = open_dataset("shapes", None, num_images=50)
    a = open_dataset("shapes", None, num_images=50, max_size=10, seed=0)
    b = open_dataset("shapes", None, num_images=50, max_size=10, seed=0)
    assert len(a) == 10 and len(open_dataset("shapes", None, num_images=50, max_size=500)) == 50
    np.testing.assert_array_equal(a._raw_idx, b._raw_idx)
    assert np.all(np.diff(a._raw_idx) > 0)  # a sorted subset
    # the subset items are the full dataset's items
    for i, r in enumerate(a._raw_idx):
        np.testing.assert_array_equal(a[i][0].numpy(), full[int(r)][0].numpy())
    # NVIDIA semantics: RandomState(seed).shuffle(arange(N)), first max_size, sorted
    ref = np.arange(50)
    np.random.RandomState(0).shuffle(ref)
    np.testing.assert_array_equal(a._raw_idx, np.sort(ref[:10]))
    m = open_dataset("shapes", None, num_images=50, max_size=10, mirror=True)
    assert len(m) == 20
    assert a.content_hash() == b.content_hash() != full.content_hash() != m.content_hash()


def test_max_size_seed_changes_subset(tmp_path):
    _make_folder(tmp_path, _rand_images(20, res=4))
    a = open_dataset("folder", str(tmp_path), max_size=5, seed=0)
    b = open_dataset("folder", str(tmp_path), max_size=5, seed=1)
    assert not np.array_equal(a._raw_idx, b._raw_idx)
    assert a.content_hash() != b.content_hash()


def test_zip_pickles_and_works_in_workers(tmp_path):
    images = _rand_images(12, res=8, seed=9)
    path = write_dataset(str(tmp_path / "w.zip"), images, labels=list(range(12)))
    ds = open_dataset("zip", path, mirror=True, use_labels=True)
    ds[0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._zipfile is None
    np.testing.assert_array_equal(clone[5][0].numpy(), images[5])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    xs = torch.cat([x for x, _ in loader]).numpy()
    np.testing.assert_array_equal(xs[:12], images)
    np.testing.assert_array_equal(xs[12:], images[..., ::-1])


def test_content_hash_stable(tmp_path):
    images = _rand_images(4, seed=4)
    path = write_dataset(str(tmp_path / "h.zip"), images)
    h1 = open_dataset("zip", path).content_hash()
    assert h1 == open_dataset("zip", path).content_hash()
    assert h1 != open_dataset("zip", path, mirror=True).content_hash()
    path2 = write_dataset(str(tmp_path / "h2.zip"), images[::-1])
    assert open_dataset("zip", path2).content_hash() != h1
    assert isinstance(h1, str) and len(h1) >= 16


def test_to_float():
    x = torch.tensor([0, 127, 255], dtype=torch.uint8)
    y = to_float(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, torch.tensor([-1.0, 127 / 127.5 - 1, 1.0]))


# ---------------------------------------------------------------------------------------------
# CIFAR-10 (fake local data; never downloads)
# ---------------------------------------------------------------------------------------------




def _as_official_pickles(batch_dir):
    """Rewrite protocol-2 pickles to reference numpy.core.multiarray, as the official (numpy 1) files do."""
    for f in os.listdir(batch_dir):
        p = os.path.join(batch_dir, f)
        with open(p, "rb") as fp:
            raw = fp.read()
        with open(p, "wb") as fp:
            fp.write(raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


@pytest.mark.parametrize("protocol", [2, "official", pickle.HIGHEST_PROTOCOL])
def test_cifar10_from_directory(tmp_path, protocol):
    batches, data, labels = write_fake_cifar(str(tmp_path), protocol=2 if protocol == "official" else protocol)
    if protocol == "official":
        _as_official_pickles(batches)
        with open(os.path.join(batches, "data_batch_1"), "rb") as fp:
            assert b"cnumpy.core.multiarray\n_reconstruct" in fp.read()
    for path in (str(tmp_path), batches):  # the parent dir or the batches dir itself
        ds = open_dataset("cifar10", path, use_labels=True)
        assert len(ds) == 20 and ds.image_shape == [3, 32, 32] and ds.label_dim == 10
        assert ds.label_names[0] == "airplane" and ds.name == "cifar10"
        xs, ys = _all_items(ds)
        np.testing.assert_array_equal(xs, data.reshape(-1, 3, 32, 32))  # rows are R, G, B planes
        np.testing.assert_array_equal(ys.argmax(1), labels)
        np.testing.assert_array_equal(ys.sum(1), 1)
    assert len(open_dataset("cifar10", str(tmp_path), split="test")) == 4
    assert open_dataset("cifar10", str(tmp_path)).label_dim == 0
    with pytest.raises(DatasetError, match=r"32x32.*resolution=64"):
        open_dataset("cifar10", str(tmp_path), resolution=64)


def test_cifar10_from_archive(tmp_path):
    src = tmp_path / "src"
    batches, data, labels = write_fake_cifar(str(src))
    archive = tmp_path / "dl" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    for path in (str(archive.parent), str(archive)):
        ds = open_dataset("cifar10", path, use_labels=True, mirror=True)
        assert len(ds) == 40
        np.testing.assert_array_equal(ds[3][0].numpy(), data[3].reshape(3, 32, 32))
        np.testing.assert_array_equal(ds[23][0].numpy(), data[3].reshape(3, 32, 32)[:, :, ::-1])
        assert int(ds[3][1].argmax()) == labels[3]


def test_cifar10_missing_and_download(tmp_path, monkeypatch):
    where = str(tmp_path / "nowhere")
    with pytest.raises(DatasetError) as e:
        open_dataset("cifar10", where)
    msg = str(e.value)
    assert where in msg and "cifar-10-python.tar.gz" in msg and "download=true" in msg
    with pytest.raises(DatasetError, match="needs a path"):
        open_dataset("cifar10", None)

    # download=true goes through torchvision (faked here: no network in tests)
    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            write_fake_cifar(root)

    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    ds = open_dataset("cifar10", where, download=True)
    assert calls == [(where, True, True)] and len(ds) == 20


def test_cifar10_refuses_code_in_pickle(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_fake_cifar(str(tmp_path))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(DatasetError, match=r"data_batch_3.*refusing"):
        open_dataset("cifar10", str(tmp_path))


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes10k():
    t0 = time.perf_counter()
    ds = ShapesDataset(resolution=32, seed=0, use_labels=True)
    dt = time.perf_counter() - t0
    return ds, dt


def test_shapes_default_and_speed(shapes10k):
    ds, dt = shapes10k
    print(f"\nshapes: generated {len(ds)} images at 32x32 in {dt:.2f} s")
    assert dt <= 20.0, f"shapes generation took {dt:.1f} s (budget 10 s)"
    assert len(ds) == 10000 and ds.image_shape == [3, 32, 32] and ds.name == "shapes"
    assert ds._images.dtype == np.uint8 and ds._images.shape == (10000, 3, 32, 32)
    x, y = ds[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 32, 32) and y.shape == (5,)
    assert ds.label_names == SHAPE_NAMES and len(SHAPE_NAMES) >= 5
    # the default dataset of open_dataset is the same thing
    d2 = open_dataset("shapes", None, use_labels=True)
    assert d2.content_hash() == ds.content_hash()


def test_shapes_variation(shapes10k):
    ds, _ = shapes10k
    imgs = ds._images.astype(np.float32)
    counts = np.bincount(ds.classes, minlength=5)
    assert counts.min() >= 0.9 * counts.mean()  # balanced classes
    labels = ds._raw_labels.argmax(1)
    np.testing.assert_array_equal(labels, ds.classes)
    mean_rgb = imgs.mean(axis=(2, 3))  # [N, 3]
    assert mean_rgb.std(0).min() > 15  # colours differ a lot between images
    assert len(np.unique(mean_rgb.round(), axis=0)) > 9000
    per_image_std = imgs.std(axis=(1, 2, 3))
    assert np.percentile(per_image_std, 5) > 8  # every image has a visible shape on it
    # anti-aliasing: many pixels are strictly between foreground and background (not binary)
    assert len(np.unique(ds._images[0])) > 10


def test_shapes_render_the_right_shape():
    """At the shape centre: circles/squares/triangles/crosses show the fill colour, rings the background."""
    n, res = 200, 32
    imgs, cls = render_shapes(n, res, seed=7)
    p = _draw_params(n, res, 7)
    for i in range(n):
        x, y = int(p["cx"][i]), int(p["cy"][i])
        centre = imgs[i, :, y, x].astype(np.float32) / 255
        d_fg = np.abs(centre - p["fg"][i]).max()
        if SHAPE_NAMES[cls[i]] == "ring":
            assert d_fg > 0.05, i
        else:
            assert d_fg < 0.02, i


def test_shapes_determinism_and_seed():
    a = ShapesDataset(resolution=16, num_images=300, seed=1)
    b = ShapesDataset(resolution=16, num_images=300, seed=1)
    c = ShapesDataset(resolution=16, num_images=300, seed=2)
    assert a._images.tobytes() == b._images.tobytes()
    assert a.content_hash() == b.content_hash()
    assert (a._images != c._images).mean() > 0.5
    assert a.content_hash() != c.content_hash()
    # first images do not depend on how many are generated
    d = ShapesDataset(resolution=16, num_images=100, seed=1)
    assert d.content_hash() != a.content_hash()
    assert GENERATOR_VERSION >= 1


@pytest.mark.parametrize("res", [4, 8, 64, 128])
def test_shapes_other_resolutions(res):
    ds = open_dataset("shapes", None, resolution=res, num_images=40, seed=3, use_labels=True, mirror=True)
    assert len(ds) == 80 and ds.image_shape == [3, res, res] and ds.resolution == res
    x, y = ds[41]
    np.testing.assert_array_equal(x.numpy(), ds[1][0].numpy()[:, :, ::-1])
    assert y.sum() == 1


def test_shapes_bad_resolution():
    for res in (3, 12, 2):
        with pytest.raises(DatasetError, match=f"power of two.*{res}"):
            open_dataset("shapes", None, resolution=res, num_images=4)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

def test_missing_paths(tmp_path):
    p = str(tmp_path / "nope")
    for kind in ("folder", "zip", "image"):
        with pytest.raises(DatasetError, match="nope.*does not exist"):
            open_dataset(kind, p)
    z = str(tmp_path / "ffhq256.zip")
    with pytest.raises(DatasetError) as e:
        open_dataset("image", z)
    msg = str(e.value)
    assert z in msg and "256x256" in msg and "00000/img00000000.png" in msg and "zoo.data.prepare" in msg
    with pytest.raises(DatasetError, match="extra advice"):
        open_dataset("ffhq", z, prepare_hint="extra advice")
    with pytest.raises(DatasetError, match="needs a path"):
        open_dataset("folder", None)


def test_empty_and_imageless_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no image files found in .*empty"):
        open_dataset("folder", str(tmp_path / "empty"))
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"no image files.*txt"):
        open_dataset("folder", str(tmp_path / "txt"))


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_corrupt_image_named_at_open(tmp_path, container):
    src = tmp_path / "src"
    _make_folder(src, _rand_images(3))
    (src / "broken.png").write_bytes(b"this is not a png at all" * 10)
    (src / "broken2.png").write_bytes(b"")
    path = str(src)
    if container == "zip":
        path = str(tmp_path / "c.zip")
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(os.listdir(src)):
                zf.write(src / f, f)
    with pytest.raises(DatasetError) as e:
        open_dataset(container, path)
    msg = str(e.value)
    assert "2 file(s)" in msg and "broken.png" in msg and "broken2.png" in msg
    assert "re-encode" in msg


def test_truncated_image_named_at_getitem(tmp_path):
    _make_folder(tmp_path, _rand_images(2, res=32))
    buf = io.BytesIO()
    PIL.Image.fromarray(_rand_images(1, res=32)[0].transpose(1, 2, 0)).save(buf, "png", compress_level=0)
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    ds = open_dataset("folder", str(tmp_path))  # the header is fine
    i = ds.image_fnames.index("trunc.png")
    with pytest.raises(DatasetError, match=r"trunc\.png"):
        ds[i]
    ds[1 - i if i < 2 else 0]  # others still work


def test_bad_sizes(tmp_path):
    nonsq = tmp_path / "nonsq"
    _make_folder(nonsq, _rand_images(2))
    PIL.Image.new("RGB", (8, 4)).save(nonsq / "wide.png")
    with pytest.raises(DatasetError, match=r"non-square.*wide\.png \(8x4\)"):
        open_dataset("folder", str(nonsq))
    npot = tmp_path / "npot"
    _make_folder(npot, _rand_images(1))
    PIL.Image.new("RGB", (12, 12)).save(npot / "twelve.png")
    with pytest.raises(DatasetError, match=r"power of two.*twelve\.png"):
        open_dataset("folder", str(npot))
    mixed = tmp_path / "mixed"
    _make_folder(mixed, _rand_images(2, res=8))
    PIL.Image.new("RGB", (16, 16)).save(mixed / "zbig.png")
    with pytest.raises(DatasetError, match=r"mixed image sizes.*img000\.png.*8x8.*zbig\.png \(16x16\)"):
        open_dataset("folder", str(mixed))


def test_resolution_mismatch(tmp_path):
    _make_folder(tmp_path / "d", _rand_images(2, res=8))
    with pytest.raises(DatasetError) as e:
        open_dataset("folder", str(tmp_path / "d"), resolution=32)
    msg = str(e.value)
    assert "8x8" in msg and "resolution=32" in msg and "resolution=8" in msg and str(tmp_path / "d") in msg
    z = write_dataset(str(tmp_path / "z.zip"), _rand_images(2, res=8))
    with pytest.raises(DatasetError, match=r"z\.zip.*8x8.*resolution=16"):
        open_dataset("zip", z, resolution=16)


def test_bad_zip_and_options(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match=r"bad\.zip.*not a readable zip"):
        open_dataset("image", str(bad))
    with pytest.raises(DatasetError, match="unknown dataset kind 'lsun'"):
        open_dataset("lsun", str(tmp_path))
    with pytest.raises(DatasetError, match=r"unknown option.*num_imgs.*num_images"):
        open_dataset("shapes", None, num_imgs=5)
    assert issubclass(DatasetError, ValueError)


# ---------------------------------------------------------------------------------------------
# InfiniteSampler
# ---------------------------------------------------------------------------------------------

def _take(sampler, k):
    return list(itertools.islice(iter(sampler), k))


def test_sampler_deterministic_and_shuffled():
    a = _take(InfiniteSampler(50, seed=3), 400)
    assert a == _take(InfiniteSampler(50, seed=3), 400)
    assert a != _take(InfiniteSampler(50, seed=4), 400)
    assert len(set(a[:50])) >= 40  # a pass is almost a permutation (window swaps may wrap around)
    assert a[:50] != list(range(50))
    counts = np.bincount(a, minlength=50)
    assert counts.min() >= 3 and counts.max() <= 14  # ~8 each, every index keeps coming
    assert a[50:100] != a[:50]  # later passes are re-shuffled
    # no shuffle: the plain cycle; shuffle with window 0: one fixed permutation, repeated
    p = _take(InfiniteSampler(50, seed=3, window_size=0), 100)
    assert sorted(p[:50]) == list(range(50)) and p[50:] == p[:50]
    assert _take(InfiniteSampler(5, shuffle=False), 12) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert all(isinstance(i, int) for i in a[:5])


@pytest.mark.parametrize("window_size", [0.5, 0.0, 1.0])
def test_sampler_ranks_partition_the_stream(window_size):
    n, R, per_rank = 23, 3, 60
    full = _take(InfiniteSampler(n, seed=1, window_size=window_size), R * per_rank)
    ranks = [_take(InfiniteSampler(n, rank=r, num_replicas=R, seed=1, window_size=window_size), per_rank)
             for r in range(R)]
    for r in range(R):
        assert ranks[r] == full[r::R]
    interleaved = [ranks[g % R][g // R] for g in range(R * per_rank)]
    assert interleaved == full


@pytest.mark.parametrize("shuffle,window_size", [(True, 0.5), (True, 0.0), (False, 0.5)])
@pytest.mark.parametrize("R", [1, 2])
def test_sampler_resume_exact(shuffle, window_size, R):
    n = 17
    for rank in range(R):
        kw = dict(rank=rank, num_replicas=R, seed=5, shuffle=shuffle, window_size=window_size)
        ref = _take(InfiniteSampler(n, **kw), 200)
        for k in (0, 1, 9, 16, 17, 18, 40, 123):
            assert _take(InfiniteSampler(n, start=k, **kw), 50) == ref[k:k + 50], (rank, k)


def test_sampler_resume_long_stream_is_fast():
    t0 = time.perf_counter()
    it = iter(InfiniteSampler(1000, seed=0, start=300_000))
    first = next(it)
    assert time.perf_counter() - t0 < 5
    ref = iter(InfiniteSampler(1000, seed=0))
    for _ in range(300_000):
        next(ref)
    assert next(ref) == first


def test_sampler_validation():
    with pytest.raises(ValueError):
        InfiniteSampler(0)
    with pytest.raises(ValueError):
        InfiniteSampler(10, rank=2, num_replicas=2)
    assert _take(InfiniteSampler(open_dataset("shapes", None, num_images=10), seed=0), 3)  # accepts a dataset
