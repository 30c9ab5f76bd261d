from portraitlib.provenance import imported_modules, module_version


def test_a_modules_version_covers_the_code_it_runs_and_not_the_whole_library():
    world = imported_modules("portraitlib.world.datasets")
    assert {"portraitlib.world.datasets", "portraitlib.world.renderer", "portraitlib.world.styles",
            "portraitlib.world.config", "portraitlib.cameras"} <= set(world)
    # `from portraitlib import cameras` must not pull in the package __init__ (all of the library),
    # nor a stage's settings: editing them would re-render the world's data sets.
    assert not {"portraitlib", "portraitlib.profiles", "portraitlib.pipeline"} & set(world)
    # A name that is not a module keeps the module it comes from.
    assert "portraitlib.metrics" in imported_modules("portraitlib.evaluation")
    assert module_version("portraitlib.world.datasets") != module_version("portraitlib.look")
