"""World-pretrained base models (issue #19): G_world, the 3D generator the study starts from.

``world``: what G_world learns from (world codes z, rendered photos with true depth, 3D point
targets); ``steps``: the distillation and depth-guided rendering losses; ``train``: the resumable
loop and its held-out measures; ``card``: safetensors weights and the model card; ``__main__``:
``python -m portraitlib.pretrain --profile mini``.
"""
