"""Configuration errors stop `tfgbench run` / `score` before the first sample, with exit status 2 and a
message that names the flag and the bad value (and close matches); nothing is generated or stored."""

from __future__ import annotations

import pytest
from conftest import face_frames, tone

from tfgbench.cli import main
from tfgbench.media.io import write_video


@pytest.fixture
def clips(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    for k in range(2):
        write_video(root / f"c{k}.mp4", face_frames(8, size=48, shift=k), tone(8), quality="standard")
    return root


CASES = [
    # (extra arguments, environment, expected pieces of the message)
    (["--model", "ground-truth,statc-frame"], {}, ["--model statc-frame", "Did you mean 'static-frame'"]),
    (["--model", "ground-truth", "--dataset", "foldr"], {}, ["--dataset foldr", "Did you mean 'folder'"]),
    (["--metrics", "psnr,lse/wav2lp"], {}, ["--metrics lse/wav2lp", "Did you mean 'lse/wav2lip'"]),
    (["--metrics", "psnr,ssmi"], {}, ["--metrics ssmi", "Did you mean 'ssim'"]),
    (["--model", "static-frame", "--model-arg", "refrence=3"], {},
     ["--model-arg refrence=3", "no setting 'refrence'", "Did you mean 'reference'"]),
    (["--model", "static-frame", "--model-arg", "reference"], {}, ["--model-arg", "KEY=VALUE", "'reference'"]),
    (["--model", "ground-truth", "--checkpoint", "CKPT"], {}, ["--checkpoint", "takes no checkpoint"]),
    (["--model", "wav2lip", "--checkpoint", "/nowhere/w.pth"], {}, ["--checkpoint /nowhere/w.pth", "no such file"]),
    (["--metrics", "psnr,lse", "--weights", "lse=/nowhere/syncnet_v2.model"], {},
     ["--weights lse=/nowhere/syncnet_v2.model", "no such file"]),
    (["--weights", "lsee=x.model"], {}, ["--weights lsee=x.model", "Did you mean 'lse'"]),
    (["--metrics", "lse/wav2lip"], {"TFGBENCH_SYNCNET": ""},
     ["SyncNet weights", "--weights lse=FILE"]),
    (["--metrics", "psnr"], {"TFGBENCH_S3FD": "/nowhere/sfd_face.pth"},
     ["$TFGBENCH_S3FD points to /nowhere/sfd_face.pth"]),
    (["--jobs", "0"], {}, ["--jobs 0"]),
    (["--limit", "0"], {}, ["--limit 0"]),
    (["--device", "gpu"], {}, ["--device gpu"]),
    (["--split", "train"], {}, ["--split train", "has no such split"]),
    (["--data-root", "/nowhere/clips"], {}, ["--data-root /nowhere/clips", "no such folder"]),
]


@pytest.mark.parametrize("extra,env,expected", CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_configuration_errors_fail_before_any_sample(tmp_path, clips, capsys, monkeypatch, extra, env, expected):
    monkeypatch.setenv("TFGBENCH_HOME", str(tmp_path / "home"))  # no user weights found by accident
    for key, value in env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    ckpt = tmp_path / "ckpt.bin"
    ckpt.write_bytes(b"w")
    args = ["run", "--model", "ground-truth", "--dataset", "folder", "--data-root", str(clips),
            "--metrics", "psnr", "--workdir", str(tmp_path / "work"), "--no-progress"]
    for i in range(0, len(extra), 2):  # later flags win; replace the defaults they repeat
        flag, value = extra[i], extra[i + 1] if i + 1 < len(extra) else None
        value = str(ckpt) if value == "CKPT" else value
        if flag in args and flag not in ("--model-arg", "--weights"):
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for piece in expected:
        assert piece in err, f"{piece!r} not in {err!r}"
    assert not (tmp_path / "work" / "results.sqlite").exists(), "a configuration error must stop before storing"


def test_a_second_model_with_a_typo_stops_the_first_from_running(tmp_path, clips, capsys):
    code = main(["run", "--model", "ground-truth,static-frme", "--dataset", "folder", "--data-root", str(clips),
                 "--metrics", "psnr", "--workdir", str(tmp_path / "work"), "--no-progress"])
    assert code == 2 and "Did you mean 'static-frame'" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_score_checks_its_flags_too(tmp_path, clips, capsys):
    code = main(["score", "--videos", str(tmp_path / "nowhere"), "--name", "x", "--dataset", "folder",
                 "--data-root", str(clips), "--metrics", "psnr", "--workdir", str(tmp_path / "work")])
    assert code == 2 and "--videos" in capsys.readouterr().err
    code = main(["score", "--videos", str(clips), "--name", "x", "--dataset", "folder", "--data-root", str(clips),
                 "--metrics", "pnsr", "--workdir", str(tmp_path / "work")])
    assert code == 2 and "--metrics pnsr" in capsys.readouterr().err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_unreadable_checkpoint_stops_the_run_instead_of_failing_every_sample(tmp_path, clips, capsys, jobs):
    import sqlite3

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")  # wav2lip reads its weights on first use, inside generate
    work = tmp_path / "work"
    code = main(["run", "--model", "wav2lip", "--checkpoint", str(garbage), "--dataset", "folder", "--data-root",
                 str(clips), "--metrics", "psnr", "--workdir", str(work), "--no-progress", "--jobs", jobs])
    err = capsys.readouterr().err
    assert code == 2 and f"--checkpoint {garbage}: model 'wav2lip' cannot use it" in err, err
    assert sqlite3.connect(work / "results.sqlite").execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
