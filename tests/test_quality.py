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
