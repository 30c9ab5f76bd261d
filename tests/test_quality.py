"""The "does it work" measures: each one scores what it should on inputs whose answer is known."""
import torch
import torch.nn.functional as F
from skimage import data as skdata

from portraitlib import cameras, faces, quality


class PixelIdentity:
    """An identity net whose descriptor is the image itself: identical images are one identity."""

    def embed(self, images):
        return F.normalize(images.flatten(1), dim=1)


class FrontalRegressor:
    def labels(self, images):
        return cameras.labels_from_angles(torch.zeros(len(images)), torch.zeros(len(images)))


def test_faces_are_found_in_a_face_and_not_in_noise():
    face = torch.from_numpy(faces.align_face(skdata.astronaut()).image).permute(2, 0, 1).float()[None] / 255
    face = F.interpolate(face, size=64, mode="bilinear", antialias=True, align_corners=False)  # a render's size
    noise = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert quality.face_detection_rate(face) == 1.0
    assert quality.face_detection_rate(noise) == 0.0
    assert quality.face_detection_rate(torch.cat([face, noise])) == 1 / 3


def test_identification_and_pose_error_read_their_inputs():
    g = torch.Generator().manual_seed(1)
    truth = torch.rand(6, 3, 16, 16, generator=g)
    images = (truth + 0.05 * torch.randn(truth.shape, generator=g)).clamp(0, 1)
    right = quality.identification(images, truth, PixelIdentity())
    wrong = quality.identification(images, truth.roll(1, 0), PixelIdentity())
    assert right["accuracy"] == 1.0 and wrong["accuracy"] == 0.0 and right["distance"] < wrong["distance"]
    frontal = cameras.labels_from_angles(torch.zeros(6), torch.zeros(6))
    turned = cameras.labels_from_angles(torch.full((6,), 20.0), torch.zeros(6))
    assert quality.pose_error_deg(images, frontal, FrontalRegressor()) < 1e-3
    assert abs(quality.pose_error_deg(images, turned, FrontalRegressor()) - 20) < 0.1
    out = quality.measure(images, labels=turned, regressor=FrontalRegressor(), truth=truth,
                          identity_net=PixelIdentity(), detect=False)
    assert set(out) == {"n", "pose_error_deg", "identification", "identity_distance"}


def test_look_classifier_learns_looks_through_the_degradations():
    from portraitlib import look

    g = torch.Generator().manual_seed(2)
    base = torch.rand(40, 3, 32, 32, generator=g) * 0.5
    warm = base.clone(); warm[:, 0] += 0.5   # "look" a: reddish
    cold = base.clone(); cold[:, 2] += 0.5   # "look" b: bluish
    images, index = torch.cat([warm, cold]), torch.arange(2).repeat_interleave(40)
    degraded = look.degrade(images, torch.Generator().manual_seed(0))
    assert degraded.shape == images.shape and 0 <= degraded.min() and degraded.max() <= 1
    assert not torch.equal(degraded, images)
    model, curve = look.train_look_classifier(images, index, ("warm", "cold"), epochs=6, seed=0, batch=16)
    assert curve[-1] < curve[0]
    assert look.look_accuracy(warm, "warm", model) > 0.9 and look.look_accuracy(cold, "cold", model) > 0.9
    table = look.confusion(model, images, index)
    assert table.sum() == 80 and table.trace() >= 72
    out = quality.measure(warm, look="warm", classifier=model, detect=False)
    assert out["look_accuracy"] > 0.9


class OneLook:
    """A look classifier that calls every image ``cartoon``."""

    looks = ("real", "cartoon")

    def predict(self, images):
        return torch.ones(len(images), dtype=torch.long)


class Distance:
    name = "pixel_l1"

    def __call__(self, a, b):
        return (a - b).abs().flatten(1).mean(1)


def test_judge_measures_a_batch_and_the_record_is_checked():
    g = torch.Generator().manual_seed(2)
    truth = torch.rand(4, 3, 16, 16, generator=g)
    judge = quality.Judge(regressor=FrontalRegressor(), classifier=OneLook(), identity_net=PixelIdentity(),
                          perceptual=Distance())
    labels = quality.gate_labels(4)
    yaws = cameras.angles_from_labels(labels)[:, 0]
    assert torch.allclose(yaws, torch.tensor([-30.0, -10.0, 10.0, 30.0]), atol=1e-3)
    q = judge(truth, look="cartoon", labels=labels, truth=truth)
    assert q["n"] == 4 and q["look_accuracy"] == 1.0 and q["identification"] == 1.0 and q["pixel_l1_to_truth"] == 0
    assert abs(q["pose_error_deg"] - 20.0) < 0.1  # |yaw| 30, 10, 10, 30 against a frontal regressor
    assert judge(truth, look="real")["look_accuracy"] == 0.0
    record = {"stage": {"cartoon": q}, "networks": {"identity": "pixels"}}
    assert quality.out_of_range(record) == []
    assert "stage | cartoon: n 4" in quality.table(record)
    broken = {"stage": {"cartoon": {**q, "face_detection": 1.5, "pose_error_deg": float("nan")}}, "empty": {"x": {"n": 0}}}
    assert len(quality.out_of_range(broken)) == 3


def test_loss_nets_know_their_names_without_loading():
    from portraitlib import study_data

    loaded = []

    def load(name):
        def make():
            loaded.append(name)
            return name
        return make

    nets = study_data.LossNets(perceptual=load("alex"), other=load("vgg"), identity=load("id"),
                               names={"perceptual": "lpips_alex", "perceptual_other": "lpips_vgg", "identity": "id"})
    assert nets.names()["perceptual_other"] == "lpips_vgg" and loaded == []
    assert nets.kid_features == "vgg" and nets.kid_features == "vgg" and loaded == ["vgg"]  # loaded once
