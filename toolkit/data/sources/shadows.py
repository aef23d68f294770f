"""`data.type: shadows`: sequences of shadows of a 3D sample, rendered on the fly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from toolkit.data.atomic_model import resolve_path
from toolkit.data.render import sample_volume
from toolkit.data.shadows import SIMULATE_STREAM, CTFDraws, OrientationSampler, ShadowData
from toolkit.data.sources.base import DataBundle, DataShapes, DataSource, OrientationCondition
from toolkit.geometry.representations import REPRESENTATION_WIDTHS
from toolkit.recipes.spec import SAMPLES, SAMPLES_IN_ANGSTROM

DRAW_BATCH = 256  # sequences per batch of `ShadowData.draw`, so chunks repeat its particles
DEFAULT_EXTENT = 0.75  # half the field, in the units of the F and the random blobs


def orientation_sampler(spec: dict) -> OrientationSampler:
    """The `orientations:` component of a shadows section."""
    if spec["type"] == "euler_ranges":
        return OrientationSampler("euler_ranges", spec["convention"], tuple(tuple(r) for r in spec["ranges"]))
    return OrientationSampler(spec["type"])


class ShadowSource(DataSource):
    """Shadows of the recipe's sample at drawn orientations, with optional CTF and noise.

    The recipe schema's `build` of each sample type makes the sample, so a new sample kind
    is a schema entry and its builder, not a change here.
    """

    name = "shadows"

    def shapes(self, condition=None, measured=None) -> DataShapes:
        condition = condition or OrientationCondition()
        keys = ("images", "condition", "rotations") + (("defocus", "ctf") if self.spec["ctf"] else ())
        keys += ("shifts",) if self.spec["shift"] > 0 else ()
        return DataShapes(
            image_size=self.spec["image_size"],
            channels=1,
            sequence_length=self.spec["sequence_length"],
            keys=keys,
            condition="orientation",
            condition_width=REPRESENTATION_WIDTHS[condition.representation],
            y_up=True,
            image_size_key="data.image_size",
            measured=dict(measured or {}),
        )

    def check(self) -> list[str]:
        ctf, errors = self.spec["ctf"], []
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
        sample = self.spec["sample"]
        if sample["type"] in SAMPLES_IN_ANGSTROM:
            if self.spec["extent"] is not None:
                errors.append(
                    f"data.extent: the {sample['type']} sample is in Angstrom, so its field is "
                    "data.image_size * data.pixel_size; remove data.extent (set data.pixel_size instead)"
                )
            if sample["type"] == "atomic_model":
                try:
                    resolve_path(sample["path"])
                except (FileNotFoundError, ImportError) as error:
                    errors.append(f"data.sample.path: {error}")
            elif not Path(sample["path"]).is_file():
                errors.append(f"data.sample.path: {sample['path']}: file not found; give an MRC map")
        return errors

    def shadow_data(self, condition=None, measured=None) -> ShadowData:
        """The `ShadowData` of the section; its intensity scale is measured unless `measured` has it."""
        spec, condition = self.spec, condition or OrientationCondition()
        sample = SAMPLES[spec["sample"]["type"]].make(spec["sample"])
        extent = DEFAULT_EXTENT if spec["extent"] is None else spec["extent"]
        if sample.angstrom:  # the detector is image_size pixels of pixel_size Angstrom
            extent = spec["image_size"] * spec["pixel_size"] / 2
            sample = sample.on_grid(spec["image_size"], spec["pixel_size"])
        settings = dict(
            sample=sample,
            image_size=spec["image_size"],
            extent=extent,
            sequence_length=spec["sequence_length"],
            orientations=orientation_sampler(spec["orientations"]),
            representation=condition.representation,
            convention=condition.convention,
            snr=spec["snr"],
            seed=spec["seed"],
            pixel_size=spec["pixel_size"],
            ctf=CTFDraws(**spec["ctf"]) if spec["ctf"] else None,
            shift=spec["shift"],
        )
        if measured and "intensity_scale" in measured:
            return ShadowData(**settings, intensity_scale=float(measured["intensity_scale"]))
        return ShadowData.create(**settings)

    def build(self, condition=None, measured=None) -> DataBundle:
        source = self.shadow_data(condition, measured)
        return DataBundle(
            train_dataset=source.train_dataset,
            validation=source.validation_set(self.spec["validation_size"]),
            shapes=self.shapes(condition, {"intensity_scale": source.intensity_scale}),
            source=source,
        )

    def draw_particles(self, count, condition=None) -> dict:
        source = self.shadow_data(condition)
        sequences, size = math.ceil(count / source.sequence_length), source.image_size

        shapes = {"images": (size, size), "rotations": (3, 3), "defocus": (3,), "shifts": (2,)}

        def chunks():  # the batches of `ShadowData.draw`, one at a time
            left = count
            for start in range(0, sequences, DRAW_BATCH):
                drawn = source.batch(min(DRAW_BATCH, sequences - start), SIMULATE_STREAM, start // DRAW_BATCH)
                take = min(left, int(drawn["images"].shape[0]) * source.sequence_length)
                left -= take
                yield {
                    key: np.reshape(drawn[key].numpy(), (-1, *shape))[:take] if key in drawn else None
                    for key, shape in shapes.items()
                }

        return {"chunks": chunks(), "truth": truth_map(source)}


def truth_map(source: ShadowData) -> np.ndarray:
    """The sample's density on the images' grid, scaled so that its sum along z is a clean shadow."""
    voxel = 2.0 * source.extent / source.image_size
    return sample_volume(source.sample, source.image_size, source.extent) * (voxel / source.intensity_scale)
