"""Second validation pass: settings that are fine alone but not together."""

from __future__ import annotations

from pathlib import Path


def cross_checks(recipe: dict) -> list[str]:
    """Errors (one line each, with key paths) for contradictory settings in a valid recipe."""
    data, model = recipe["data"], recipe["model"]
    ctf = data.get("ctf")
    errors = []
    if ctf and ctf["defocus_min"] > ctf["defocus_max"]:
        errors.append(
            f"data.ctf.defocus_min: {ctf['defocus_min']} exceeds data.ctf.defocus_max "
            f"{ctf['defocus_max']}; swap them"
        )
    if ctf and ctf["astigmatism"] > 2 * ctf["defocus_min"]:
        errors.append(
            f"data.ctf.astigmatism: {ctf['astigmatism']} would make defocus_v negative at "
            f"defocus_min {ctf['defocus_min']}; use at most {2 * ctf['defocus_min']}"
        )
    if model["type"] == "orientation_estimator":
        if data["type"] != "shadows":
            errors.append("model.type: orientation_estimator needs orientations; use data.type: shadows")
        return errors + layer_errors(recipe)
    decoder = model["decoder"]
    if data["type"] == "shadows":
        step = 2 ** len(decoder["filters"])
        if data["image_size"] % step:
            errors.append(
                f"data.image_size: {data['image_size']} must be a multiple of "
                f"2 ** len(model.decoder.filters) "
                f"= {step}; change one of them"
            )
        if model["likelihood"]["type"] == "bernoulli":
            errors.append(
                "model.likelihood.type: bernoulli needs intensities in [0, 1]; use gaussian for shadows"
            )
    else:
        if 28 % 2 ** len(decoder["filters"]):
            errors.append(
                f"model.decoder.filters: {len(decoder['filters'])} upsampling steps do not divide "
                f"the 28-pixel "
                f"MNIST images; use at most 2"
            )
        if model["sampler"]["type"] == "LSTMSampler":
            errors.append(
                "model.sampler.type: LSTMSampler reads sequences; MNIST has single images, use Dense"
            )
        if data["path"] is not None and data["source"] != "keras":
            errors.append("data.path: only used with data.source: keras; remove it or set source: keras")
        elif data["path"] is not None and not Path(data["path"]).expanduser().is_file():
            errors.append(f"data.path: {data['path']}: file not found; give a Keras-format mnist.npz")
    if data["type"] == "shadows" and model["sampler"]["type"] == "Dense" and data["sequence_length"] != 1:
        errors.append(
            "model.sampler.type: Dense reads one shadow, but data.sequence_length is "
            f"{data['sequence_length']}; "
            f"use LSTMSampler or sequence_length: 1"
        )
    errors += layer_errors(recipe)
    return errors


def layer_errors(recipe: dict) -> list[str]:
    """Construct each layer once (no weights are made) so its own argument checks run now."""
    from toolkit.recipes.builders import LAYERS, layer_kwargs

    errors = []
    model = recipe["model"]
    fixed = {"encoder": {}}
    if model["type"] == "orientation_estimator":
        fixed["head"] = {}
    else:
        fixed["sampler"] = {"latent_dim": model["latent_dim"]}
        fixed["decoder"] = {"image_size": 2 ** len(model["decoder"].get("filters", ())) or 1}
    for part in fixed:
        spec = model[part]
        if spec["type"] not in LAYERS:
            continue
        try:
            LAYERS[spec["type"]](**fixed[part], **layer_kwargs(spec))
        except (ValueError, TypeError) as error:
            errors.append(f"model.{part}: {error}")
    return errors
