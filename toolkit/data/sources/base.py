"""The data-source interface: what every `data.type` hands the training loop and the model.

A data source is registered by its `data.type` in the recipe schema
(`toolkit.recipes.spec.DATA`, the component's `build`), which constructs it from the
validated `data:` section. It owns its own cross-field checks, the shapes it hands the
model, and the building of its training and validation batches.

A batch is a dict of arrays. `images` is always there; the other entries exist only when
the source has them (`BATCH_KEYS` lists them), so a model that learns without true poses
simply finds no `rotations`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

#: Every batch entry a data source may provide, and what it holds.
BATCH_KEYS = {
    "images": "float32 [B, (T,) S, S, C] images",
    "rotations": "float32 [B, (T,) 3, 3] true poses, x' = R x, beam along +z",
    "condition": "float32 [B, (T,) K] what a conditional model is conditioned on",
    "labels": "int32 [B] class labels",
    "defocus": "float32 [B, (T,) 3] CTF defocus_u, defocus_v (Angstrom) and its azimuth (degrees)",
    "ctf": "float32 [B, (T,) S, S] the CTF each image went through, on the unshifted FFT grid "
    "(its absolute value once the images are phase-flipped)",
    "shifts": "float32 [B, (T,) 2] where each particle's centre lies, (x, y) pixels from pixel S // 2",
}


@dataclass(frozen=True)
class OrientationCondition:
    """How a model conditioned on orientation wants it: a representation and the Euler axes.

    `representation` is a key of `toolkit.geometry.REPRESENTATION_WIDTHS`; `convention`
    (scipy-style axes) matters for Euler angles only.
    """

    representation: str = "matrix"
    convention: str = "ZYZ"


@dataclass(frozen=True)
class DataShapes:
    """What the model sees of its data: enough to build, export and load it without the data.

    A run directory stores these (with what the source `measured` on its data, such as the
    intensity scale) so `toolkit export`, `plot`, `compress` and `infer` never rebuild the
    training data to learn a shape.
    """

    #: Height and width of the (square) images in pixels.
    image_size: int
    #: Channels per image.
    channels: int
    #: Views per example (`[B, T, S, S, C]` batches), or `None` for single images (`[B, S, S, C]`).
    sequence_length: int | None
    #: The entries of every batch (keys of `BATCH_KEYS`).
    keys: tuple[str, ...]
    #: What `condition` holds: "orientation", "label" or `None` when there is no condition.
    condition: str | None = None
    #: Width of `condition`, or `None`.
    condition_width: int | None = None
    #: Pixels lie in [0, 1] (a Bernoulli likelihood needs that).
    unit_intensities: bool = False
    #: Row 0 of an image holds the lowest y (shadows), not the top row (photographs, MNIST).
    y_up: bool = False
    #: Recipe key path of the image size, or `None` when the source fixes it.
    image_size_key: str | None = None
    #: Values the source measured on its data at training time, e.g. `intensity_scale`.
    measured: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one example: `(T, S, S, C)` or `(S, S, C)`."""
        time = () if self.sequence_length is None else (self.sequence_length,)
        return (*time, self.image_size, self.image_size, self.channels)

    @property
    def open_batch_shape(self) -> list:
        """`[None, (None,) S, S, C]`: a batch of examples, its size and sequence length left open."""
        time = [] if self.sequence_length is None else [None]
        return [None, *time, self.image_size, self.image_size, self.channels]

    def zeros(self, count: int = 2) -> dict:
        """A batch of `count` zero examples with every entry of `keys`, e.g. to create a model's variables."""
        time = () if self.sequence_length is None else (self.sequence_length,)
        shapes = {
            "images": self.image_shape,
            "rotations": (*time, 3, 3),
            "condition": (*time, self.condition_width or 0),
            "labels": (),
            "defocus": (*time, 3),
            "ctf": (*time, self.image_size, self.image_size),
            "shifts": (*time, 2),
        }
        return {
            key: np.zeros((count, *shapes[key]), np.int32 if key == "labels" else np.float32)
            for key in self.keys
        }

    def to_json(self) -> dict:
        return {**asdict(self), "keys": list(self.keys)}

    @classmethod
    def from_json(cls, data: dict) -> DataShapes:
        return cls(**{**data, "keys": tuple(data["keys"])})


@dataclass
class DataBundle:
    """The data of a run: a training-batch factory, the fixed validation set, and its shapes."""

    #: `train_dataset(batch_size, start_batch)` -> a `tf.data.Dataset` of global batches.
    train_dataset: Callable
    #: The fixed validation set: a dict of numpy arrays (the batch entries of `shapes.keys`).
    validation: dict
    shapes: DataShapes
    #: The source's own object (e.g. `ShadowData`), for commands that draw more of it.
    source: object = None
    #: Labelled training examples (`images`, `labels`), for metrics fitted on them (the 5-NN of digits).
    labelled_training: dict | None = None


class DataSource:
    """One kind of data. Subclasses set `name` and implement `shapes`, `check` and `build`.

    Args:
        spec: the validated `data:` section of the recipe.
    """

    name = ""

    def __init__(self, spec: dict):
        self.spec = spec

    def shapes(
        self, condition: OrientationCondition | None = None, measured: dict | None = None
    ) -> DataShapes:
        """The shapes of the batches, from the recipe alone (no data is made).

        Args:
            condition: how the model wants orientations, for sources that have them;
                `None` takes `OrientationCondition()`.
            measured: values measured at training time, when known.
        """
        raise NotImplementedError

    def draw_particles(self, count: int, condition: OrientationCondition | None = None) -> dict:
        """`count` new single images for `toolkit simulate`, never seen in training or validation.

        Returns `chunks`, an iterator of consecutive particles drawn as it is read (so memory holds
        one chunk, whatever `count`), each a dict of `images` `[n, S, S]`, `rotations` `[n, 3, 3]`,
        `defocus` `[n, 3]` (or `None` without a CTF) and `shifts` `[n, 2]` (where each particle's
        centre lies, in pixels; or `None`); and `truth`, the sample's map `[S, S, S]` (z y x) whose
        projections are the clean images. A source that cannot draw new images raises `RunError`.
        """
        from toolkit.errors import RunError

        raise RunError(
            f"data.type: {self.name} cannot draw new particles; toolkit simulate needs e.g. shadows"
        )

    def check(self) -> list[str]:
        """Errors (one line each, with key paths) for settings of this section that contradict each other."""
        return []

    def build(
        self, condition: OrientationCondition | None = None, measured: dict | None = None
    ) -> DataBundle:
        """The training batches and the validation set.

        Args:
            condition: as for `shapes`.
            measured: what an earlier build measured (`DataShapes.measured`); given, it is
                reused instead of measured again, so a resumed or reloaded run sees the same data.
        """
        raise NotImplementedError
