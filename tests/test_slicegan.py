"""SliceGAN (pure part): size arithmetic, data, WGAN-GP training on a real image, generation,
checkpoints and resume. Truth comes from the paper's numbers (layer rule, 64^3 from a 4^3 latent,
about 40 M parameters), from the training image itself, and from running the same computation
another way (one piece against chunks, one period against two, uninterrupted against resumed).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, SAMPLES

torch = pytest.importorskip("torch")
tifffile = pytest.importorskip("tifffile")

from progral_dagster.ml.slicegan import (  # noqa: E402
    Critic2D,
    CropSampler,
    Generator3D,
    cpu_config,
    generate_volume,
    load_generator,
    one_hot,
    reference_config,
    save_generator,
    train_slicegan,
)
from progral_dagster.ml.slicegan.data import volume_slices  # noqa: E402
from progral_dagster.ml.slicegan.generate import (  # noqa: E402
    indices_from_latent,
    periodic_crop,
    periodic_latent,
)

SEM = SAMPLES / "microstructure" / "SEM_hr_input.tif"


def tiny_config(**changes) -> object:
    """A very small network for mechanism tests (not for quality)."""
    base = dataclasses.replace(
        cpu_config(),
        name="tiny",
        latent_channels=4,
        generator_filters=(16, 8, 8),
        critic_filters=(8, 8, 8),
        batch_size=2,
        critic_steps=2,
        slices_per_axis=4,
        checkpoint_every=2,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def sem() -> np.ndarray:
    return tifffile.imread(SEM)


# -- configurations and networks -------------------------------------------------------------
@pytest.mark.parametrize("variant", ["current", "v1", "cpu"])
def test_size_arithmetic_and_padding_rule(variant):
    config = cpu_config() if variant == "cpu" else reference_config(variant)
    generator = Generator3D(config, 3).eval()
    critic = Critic2D(config, 3)
    n = config.generator_layers
    for module in generator.modules():
        if isinstance(module, torch.nn.ConvTranspose3d):
            k, s, p = module.kernel_size[0], module.stride[0], module.padding[0]
            assert s < k and k % s == 0 and p >= k - s  # the paper's rule
    with torch.no_grad():
        # the reference networks are big: one small non-cubic latent, and the paper's 4^3 below
        for latent in (3, 4, 5) if variant == "cpu" else (3,):
            z = torch.randn(1, config.latent_channels, latent, latent, latent + 1)
            out = generator(z)
            assert out.shape == (
                1,
                3,
                2**n * (latent - 2),
                2**n * (latent - 2),
                2**n * (latent - 1),
            )
            assert torch.allclose(out.sum(1), torch.ones(1))  # softmax over phases
        assert critic(torch.rand(5, 3, config.crop, config.crop)).shape == (5,)
    assert config.output_edge(config.training_latent) == config.crop
    if variant != "cpu":  # "a 4x4x4 latent gives 64^3"
        with torch.no_grad():
            out = generator(torch.randn(1, config.latent_channels, 4, 4, 4))
        assert out.shape == (1, 3, 64, 64, 64)
        assert config.crop == 64 and config.output_edge(10) == 256
        assert config.gp_weight == 10 and config.critic_steps == 5 and config.lr_generator == 1e-4
    if variant == "current":  # "about 40 M parameters in the larger variant"
        params = sum(p.numel() for p in generator.parameters())
        assert 35e6 < params < 45e6


def test_config_round_trips_and_rejects_inconsistent_sizes():
    config = reference_config()
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="critics take"):
        dataclasses.replace(config, training_latent=5)
    with pytest.raises(ValueError, match="final_layer"):
        dataclasses.replace(config, final_layer="pixelshuffle")


# -- data ------------------------------------------------------------------------------------
def test_one_hot_and_slices_follow_numpy_orientation():
    rng = np.random.default_rng(0)
    labels = rng.choice([3, 7, 9], size=(5, 6, 7)).astype(np.uint8)
    encoded = one_hot(labels, [3, 7, 9])
    assert encoded.shape == (3, 5, 6, 7)
    assert np.array_equal(np.array([3, 7, 9])[encoded.argmax(0)], labels)
    assert np.all(encoded.sum(0) == 1)
    volume = torch.from_numpy(encoded).unsqueeze(0).repeat(2, 1, 1, 1, 1)
    for axis in range(3):
        slices = volume_slices(volume, axis)
        assert slices.shape[0] == 2 * labels.shape[axis]
        for i in (0, labels.shape[axis] - 1):
            expected = np.take(labels, i, axis=axis)
            got = np.array([3, 7, 9])[slices[i].argmax(0).numpy()]
            assert np.array_equal(got, expected)
        picked = volume_slices(volume, axis, torch.tensor([2]))
        assert np.array_equal(
            np.array([3, 7, 9])[picked[0].argmax(0).numpy()], np.take(labels, 2, axis=axis)
        )
    with pytest.raises(ValueError, match="not among"):
        one_hot(labels, [3, 7])


def _occurs_in(crop: np.ndarray, image: np.ndarray) -> bool:
    windows = np.lib.stride_tricks.sliding_window_view(image, crop.shape)
    return bool(np.all(windows == crop, axis=(-2, -1)).any())


def test_crops_are_windows_of_the_right_image(sem):
    rng = torch.Generator().manual_seed(1)
    iso = CropSampler([sem], 32)
    assert iso.mode == "isotropic" and iso.n_critics == 1 and iso.axes_of(0) == [0, 1, 2]
    assert iso.phase_labels == [0, 1, 2]
    batch = iso.sample(0, 3, rng)
    assert batch.shape == (3, 3, 32, 32)
    for crop in batch:
        assert _occurs_in(np.array([0, 1, 2])[crop.argmax(0).numpy()], sem)
    # anisotropic: critic d draws from images[d] only
    parts = [sem[:100, :100], sem[200:300, :100].T.copy(), sem[300:, 300:]]
    aniso = CropSampler(parts, 32)
    assert aniso.mode == "anisotropic" and aniso.n_critics == 3 and aniso.axes_of(2) == [2]
    for d in range(3):
        crop = np.array([0, 1, 2])[aniso.sample(d, 1, rng)[0].argmax(0).numpy()]
        assert _occurs_in(crop, parts[d])
    # a 3D volume: critic d draws from slices normal to axis d
    volume = np.stack([sem[i : i + 40, :50] for i in range(0, 60, 2)])  # (30, 40, 50)
    vol = CropSampler([volume], 16)
    assert vol.mode == "volume" and vol.n_critics == 3
    for d in range(3):
        crop = np.array([0, 1, 2])[vol.sample(d, 1, rng)[0].argmax(0).numpy()]
        assert any(_occurs_in(crop, np.take(volume, i, axis=d)) for i in range(volume.shape[d]))
    with pytest.raises(ValueError, match="smaller than"):
        CropSampler([sem[:20, :20]], 32)
    with pytest.raises(ValueError, match="three 2D images"):
        CropSampler([sem, sem], 32)


# -- training --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(sem):
    """The CPU configuration trained briefly on a 160 x 160 crop of the SEM image."""
    # One thread: on a shared 2-core machine two threads spin against each other.
    torch.set_num_threads(1)
    records = []
    result = train_slicegan(
        [sem[:160, :160]], cpu_config(), iterations=30, seed=0, callback=records.append
    )
    return result, records


def test_cpu_training_behaves_like_wgan_gp(trained):
    result, records = trained
    h = {k: np.array(v) for k, v in result.history.items()}
    assert result.iterations == 30 and result.stop_reason == "iterations"
    assert list(h["iteration"]) == list(range(1, 31))
    assert [r["iteration"] for r in records] == list(range(1, 31))
    assert result.device == "cpu" and result.mode == "isotropic"
    assert result.elapsed_s < 120
    for key in ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty"):
        assert np.all(np.isfinite(h[key])), key
    # critic loss = -W + 10 GP, GP >= 0: the recorded terms must add up
    assert np.all(h["gradient_penalty"] >= 0)
    assert np.allclose(h["critic_loss"], -h["wasserstein"] + 10 * h["gradient_penalty"], atol=1e-4)
    # An untrained critic scores everything alike: W ~ 0, GP ~ 1 (zero gradient), loss ~ 10.
    assert abs(h["wasserstein"][0]) < 1.0 and h["critic_loss"][0] > 5
    # The critic learns to separate real from fake: W rises, the penalty falls, the loss goes
    # negative.
    assert h["wasserstein"][-10:].mean() > 1.0
    assert h["wasserstein"].std() > 0.1
    assert h["gradient_penalty"][-10:].mean() < h["gradient_penalty"][:3].mean()
    assert h["critic_loss"][-5:].mean() < 0
    # The generator's loss is minus the critic's score of its slices: it falls as W rises.
    assert h["generator_loss"][-10:].mean() < h["generator_loss"][:3].mean()


@pytest.mark.parametrize("size", [32, 48, 64, 96, (40, 56, 72)])
def test_generated_volume_has_the_requested_size_and_training_labels(trained, size):
    result, _ = trained
    volume = generate_volume(result, size, seed=3)
    expected = (size,) * 3 if isinstance(size, int) else size
    assert volume.shape == expected
    assert volume.dtype == np.uint8
    assert set(np.unique(volume)) <= {0, 1, 2}
    if volume.size >= 64**3:  # after 30 iterations all phases show, NMC (1) the majority
        labels, counts = np.unique(volume, return_counts=True)
        assert list(labels) == [0, 1, 2] and labels[counts.argmax()] == 1
    assert np.array_equal(volume, generate_volume(result, size, seed=3))  # seeded
    if size == 64:
        assert not np.array_equal(volume, generate_volume(result, size, seed=4))


def test_generation_uses_eval_mode_and_leaves_the_network_alone(trained):
    result, _ = trained
    net = result.generator
    net.train()
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d))
    before = bn.running_mean.clone()
    a = generate_volume(net, 32, seed=1)
    assert net.training  # mode restored
    assert torch.equal(bn.running_mean, before)  # running statistics used, not updated
    net.eval()
    assert np.array_equal(a, generate_volume(net, 32, seed=1))


def test_save_and_load_keep_weights_config_and_labels(trained, tmp_path, sem):
    result, _ = trained
    path = save_generator(result.generator, tmp_path / "g.pt", metadata={"run": "x"})
    state = torch.load(path, weights_only=True)  # loadable without unpickling code
    assert state["phase_labels"] == [0, 1, 2] and state["config"]["name"] == "cpu"
    loaded = load_generator(path)
    assert loaded.config == result.config and loaded.phase_labels == [0, 1, 2]
    assert np.array_equal(generate_volume(path, 48, seed=9), generate_volume(result, 48, seed=9))
    # label values other than 0..P-1 come back as stored
    relabelled = np.choose(sem[:64, :64], [0, 85, 170]).astype(np.uint8)
    small = train_slicegan([relabelled], tiny_config(), iterations=1, seed=0)
    save_generator(small.generator, tmp_path / "r.pt")
    assert set(np.unique(generate_volume(tmp_path / "r.pt", 32, seed=0))) <= {0, 85, 170}


# -- chunked and periodic generation ---------------------------------------------------------
@pytest.fixture(scope="module")
def double_net():
    torch.manual_seed(0)
    net = Generator3D(tiny_config(), 3).double().eval()
    with torch.no_grad():  # non-trivial running statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net


def test_phase_argmax_equals_torch_argmax_including_ties():
    from progral_dagster.ml.slicegan.generate import _argmax_phases

    torch.manual_seed(0)
    for phases in (2, 3, 5):
        scores = torch.randn(phases, 9, 8, 7)
        scores[1, :3] = scores[0, :3]  # ties go to the first phase
        scores[-1, 5:] = scores[:, 5:].max(0).values  # and to the earlier of equal maxima
        assert torch.equal(_argmax_phases(scores), scores.argmax(0).to(torch.uint8))


@pytest.mark.parametrize("final_layer", ["transpose", "resize"])
def test_chunked_generation_equals_one_piece(final_layer):
    torch.manual_seed(1)
    net = Generator3D(tiny_config(final_layer=final_layer), 3).double().eval()
    z = torch.randn(4, 6, 5, 7, dtype=torch.float64)
    whole = indices_from_latent(net, z, None)
    assert whole.shape == (16 * 4, 16 * 3, 16 * 5)
    for chunk in (1, 2):
        assert torch.equal(indices_from_latent(net, z, chunk), whole), chunk


@pytest.mark.parametrize("final_layer", ["transpose", "resize"])
def test_periodic_volume_tiles_seamlessly(final_layer):
    torch.manual_seed(2)
    config = tiny_config(final_layer=final_layer)
    net = Generator3D(config, 3).double().eval()
    z0 = torch.randn(4, 2, 3, 2, dtype=torch.float64)
    size = (32, 48, 32)
    one = indices_from_latent(net, periodic_latent(z0))[periodic_crop(config, size)]
    assert one.shape == size
    # Two periods generated from a latent that repeats twice must be the one period tiled:
    # no seam anywhere.
    two = indices_from_latent(net, periodic_latent(z0.repeat(1, 2, 2, 2)))
    two = two[periodic_crop(config, tuple(2 * s for s in size))]
    assert torch.equal(two, one.repeat(2, 2, 2))


def test_periodic_generate_volume(trained):
    result, _ = trained
    volume = generate_volume(result, 32, seed=5, periodic=True)
    assert volume.shape == (32, 32, 32) and set(np.unique(volume)) <= {0, 1, 2}
    with pytest.raises(ValueError, match="multiples of 16"):
        generate_volume(result, 40, periodic=True)


def test_chunked_generate_volume_matches_one_piece(trained):
    result, _ = trained
    a = generate_volume(result, (64, 48, 80), seed=11, chunk_blocks=None)
    b = generate_volume(result, (64, 48, 80), seed=11, chunk_blocks=1)
    # float32 convolutions on windows of different sizes may round differently: allow a
    # handful of near-tie voxels (the float64 test above demands exact equality)
    assert np.mean(a != b) < 1e-4


# -- checkpoints, resume, budgets ------------------------------------------------------------
def test_resume_continues_and_reproduces_an_uninterrupted_run(sem, tmp_path):
    image = sem[:96, :96]
    config = tiny_config()
    straight = train_slicegan([image], config, iterations=6, seed=4, checkpoint_dir=tmp_path / "a")
    first = train_slicegan([image], config, iterations=3, seed=4, checkpoint_dir=tmp_path / "b")
    assert first.iterations == 3 and (tmp_path / "b" / "slicegan_checkpoint.pt").exists()
    resumed = train_slicegan(
        [image], None, iterations=6, seed=4, checkpoint_dir=tmp_path / "b", resume=True
    )
    assert resumed.iterations == 6 and resumed.config == config
    assert resumed.history["iteration"] == [1, 2, 3, 4, 5, 6]
    for key in ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty"):
        assert resumed.history[key] == straight.history[key], key
    a, b = straight.generator.state_dict(), resumed.generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(
        generate_volume(straight, 32, seed=0), generate_volume(resumed, 32, seed=0)
    )
    # the generator file written beside the checkpoint is the trained generator
    from_file = generate_volume(tmp_path / "b" / "generator.pt", 32, seed=0)
    assert np.array_equal(from_file, generate_volume(resumed, 32, seed=0))
    # resuming with other images or another configuration is refused
    with pytest.raises(ValueError, match="other images"):
        train_slicegan(
            [sem[:96, 100:196]], None, iterations=7, checkpoint_dir=tmp_path / "b", resume=True
        )
    with pytest.raises(ValueError, match="differs"):
        train_slicegan(
            [image],
            tiny_config(batch_size=3),
            iterations=7,
            checkpoint_dir=tmp_path / "b",
            resume=True,
        )


def test_time_budget_and_callback_stop_training(sem):
    image = sem[:64, :64]
    timed = train_slicegan([image], tiny_config(), time_budget_s=0.5, seed=0)
    assert timed.stop_reason == "time_budget" and timed.iterations >= 1
    stopped = train_slicegan(
        [image], tiny_config(), iterations=50, seed=0, callback=lambda r: r["iteration"] >= 2
    )
    assert stopped.stop_reason == "callback" and stopped.iterations == 2
    with pytest.raises(ValueError, match="iterations"):
        train_slicegan([image], tiny_config())


def test_anisotropic_training_uses_three_critics(sem):
    parts = [sem[:64, :64], sem[100:164, :64], sem[200:264, :64]]
    result = train_slicegan(parts, tiny_config(), iterations=2, seed=0)
    assert result.mode == "anisotropic" and len(result.critics) == 3
    assert generate_volume(result, (16, 32, 48), seed=0).shape == (16, 32, 48)


# -- imports ---------------------------------------------------------------------------------
def test_slicegan_and_metrics_import_with_torch_and_numpy_only():
    code = (
        "import sys\n"
        "import progral_dagster.ml.slicegan as s\n"
        "assert 'torch' not in sys.modules\n"  # lazy until used
        "s.train_slicegan, s.generate_volume, s.load_generator\n"
        "import progral_dagster.ml.microstructure\n"
        "bad = [m for m in ('dagster', 'mlflow', 'sklearn', 'scipy', 'skimage', 'tifffile',\n"
        "       'pandas', 'pyarrow', 'PIL', 'matplotlib') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# -- benchmarks run with torch and numpy alone ----------------------------------------------
_BLOCKED = (
    "import runpy, sys\n"
    "for name in ('tifffile', 'PIL', 'scipy', 'dagster', 'mlflow', 'pandas', 'skimage',\n"
    "             'sklearn', 'pyarrow', 'matplotlib'):\n"
    "    sys.modules[name] = None  # any import of these fails\n"
    "script = sys.argv[1]\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(script, run_name='__main__')\n"
)


@pytest.mark.slow
def test_quality_benchmark_runs_with_torch_and_numpy_alone(tmp_path):
    out = tmp_path / "q.json"
    args = ["bench/bench_slicegan_quality.py", "--budget", "2", "--size", "32"]
    args += ["--threads", "1", "--no-tortuosity", "--json", str(out)]
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED, *args], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "configuration 'cpu'" in run.stdout
    report = json.loads(out.read_text())
    assert [m["mode"] for m in report["modes"]] == ["iso", "aniso"]
    # the built-in TIFF reader (tifffile and Pillow blocked) read the real fractions
    real = tifffile.imread(SAMPLES / "microstructure" / "NMC_lr_input.tif")[48:80, 48:80, 48:80]
    vf = report["modes"][0]["comparison"]["phases"]["1"]["volume_fraction"]["real"]
    assert vf == pytest.approx(np.mean(real == 1))


@pytest.mark.slow
def test_generation_benchmark_prints_throughput(tmp_path):
    out = tmp_path / "g.json"
    args = ["bench/bench_slicegan_generation.py", "--configs", "cpu", "--sizes", "32,64"]
    args += ["--repeat", "1", "--threads", "1", "--json", str(out)]
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED, *args], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["size"] for r in rows] == [32, 64]
    assert all(r["voxels_per_s"] == pytest.approx(r["size"] ** 3 / r["seconds"]) for r in rows)
    assert "voxels/s" in run.stdout
