"""Preparing the paper profile's data: a folder of face photos (CelebA-HQ, FFHQ, your own) or of a
style's exemplars to EG3D's layout (aligned PNGs + ``dataset.json`` with camera labels), where
the profile reads it:

    python -m portraitlib.prepare photos DIR [--split train|test] [--out OUT] [--profile paper]
                                             [--resolution R] [--limit N]
    python -m portraitlib.prepare exemplars DIR --style NAME [--out OUT] [--profile paper] [--resolution R]

Modules: :mod:`~portraitlib.prepare.core` (the run and its summary),
:mod:`~portraitlib.prepare.sources` (input files, output names, the split, reasons for refusal),
:mod:`~portraitlib.prepare.state` (atomic writes, the journal that makes runs resumable,
``dataset.json``) and ``__main__`` (the command line). Importing this package does nothing.
"""
