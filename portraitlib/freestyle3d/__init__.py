"""Free-style fast 3D portraits (seed 001): a text-guided image editor (InstructPix2Pix, Ip2p) builds
a few-shot multi-view set from one 3D-GAN identity (Alg. 1), and an image-to-triplane network (I2T)
fine-tuned on it renders the style in 3D (Alg. 2).

    pipe = editor.build_editor(config, resolution=64, tokenizer=clip_tokenizer(folder))  # diffusers' own pipeline
    views = fewshot.view_grid(10)                                   # (P, Y): i x i cameras in +-30 deg
    D_s = fewshot.construct(pipe, renders, noise=n, tau=0.9, ...)   # Alg. 1

On the mini profile the editor is a small Ip2p trained on the head world's pairs (a neutral render,
"turn the head into a <style>", the true stylized render), near-frontal views only; the paper
profile loads ``timbrooks/instruct-pix2pix`` from a folder.
"""
