"""The run directory: every file a run writes is named here, once.

```
RUN_DIR/
  recipe.yaml      the resolved recipe (defaults filled in, overrides applied)
  data.json        the shapes the data hands the model and what it measured (DataShapes)
  metrics.csv      one row per epoch
  summary.json     final metrics and timings
  run.log          the run's log
  checkpoints/     step-N.npz, the newest kept
  tensorboard/     event files
  figures/         PNG figures
  saved_model/     the SavedModel with the task's signatures
  map.mrc          a map the model learned (ab initio), pixel size in its header
  particles.mrcs   the held-out images whose learned poses poses.star holds (ab initio)
  poses.star       their poses, RELION 3.1, in the learned map's frame
```

`RunDirectory` creates, refuses, reads and writes these; `load_run` brings a finished run
back (its task, shapes and restored model) without rebuilding its training data.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from toolkit.errors import RunError
from toolkit.io.atomic import write_text_atomically


class RunDirectory:
    """The files of one run directory."""

    RECIPE = "recipe.yaml"
    DATA = "data.json"
    METRICS = "metrics.csv"
    SUMMARY = "summary.json"
    LOG = "run.log"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"
    FIGURES = "figures"
    SAVED_MODEL = "saved_model"
    MAP = "map.mrc"
    PARTICLES = "particles.mrcs"
    POSES = "poses.star"
    #: What a run writes; `--overwrite` removes these (other files stay).
    ARTIFACTS = (
        *(RECIPE, DATA, METRICS, SUMMARY, LOG, CHECKPOINTS, TENSORBOARD, FIGURES, SAVED_MODEL),
        *(MAP, PARTICLES, POSES),
    )

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def new(cls, name: str, root: Path = Path("runs")) -> RunDirectory:
        """`root/<name>-<timestamp>`, the default of `toolkit run`."""
        return cls(root / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")

    def __str__(self) -> str:
        return str(self.path)

    recipe = property(lambda self: self.path / self.RECIPE)
    data = property(lambda self: self.path / self.DATA)
    metrics = property(lambda self: self.path / self.METRICS)
    summary = property(lambda self: self.path / self.SUMMARY)
    log = property(lambda self: self.path / self.LOG)
    checkpoints = property(lambda self: self.path / self.CHECKPOINTS)
    tensorboard = property(lambda self: self.path / self.TENSORBOARD)
    figures = property(lambda self: self.path / self.FIGURES)
    saved_model = property(lambda self: self.path / self.SAVED_MODEL)
    map = property(lambda self: self.path / self.MAP)
    particles = property(lambda self: self.path / self.PARTICLES)
    poses = property(lambda self: self.path / self.POSES)

    def refuse_non_empty(self, option: str = "--out") -> None:
        """Raise `RunError` when the directory exists and is not empty (nothing is created)."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise RunError(f"{path}: exists and is not a directory; choose another {option}")
        if path.is_dir() and any(path.iterdir()):
            raise RunError(f"{path}: exists and is not an empty directory; choose another {option}")

    def create(self, overwrite: bool = False) -> None:
        """Create the directory; refuse a non-empty one unless `overwrite`.

        With `overwrite` the artifacts of an earlier run are removed first, so none of its
        checkpoints, metrics or events can be mistaken for the new run's.
        """
        path = self.path
        if path.exists() and not path.is_dir():
            raise RunError(f"{path}: exists and is not a directory; choose another --out")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise RunError(
                f"{path}: run directory exists and is not empty; pass --overwrite or choose another --out"
            )
        try:
            for name in self.ARTIFACTS if path.is_dir() else ():
                old = path / name
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old)
                elif old.exists() or old.is_symlink():
                    old.unlink()
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise RunError(f"{path}: cannot write the run directory ({error.strerror or error})") from None

    def require(self, what: str = "a run directory written by toolkit run") -> None:
        """Raise `RunError` unless the directory holds a recipe."""
        if not self.recipe.is_file():
            raise RunError(f"{self.path}: no {self.RECIPE}; expected {what}")

    def write_text(self, path: Path, text: str) -> None:
        """Write `text` into `path` (one of this directory's files) atomically; `RunError` when it cannot."""
        try:
            write_text_atomically(path, text)
        except OSError as error:
            raise RunError(
                f"{self.path}: cannot write the run directory ({error.strerror or error})"
            ) from None

    def write_recipe(self, recipe: dict) -> None:
        self.write_text(self.recipe, yaml.safe_dump(recipe, sort_keys=False))

    def write_json(self, path: Path, data: dict) -> None:
        self.write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def read_json(self, path: Path) -> dict:
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_shapes(self, shapes) -> None:
        self.write_json(self.data, shapes.to_json())

    def read_shapes(self):
        """The run's `DataShapes`, or `None` for a run written before `data.json` existed."""
        from toolkit.data.sources.base import DataShapes

        return DataShapes.from_json(self.read_json(self.data)) if self.data.is_file() else None

    def latest_checkpoint(self) -> tuple[int, Path]:
        """`(step, path)` of the newest checkpoint, or `RunError`."""
        from toolkit.training.checkpoints import list_checkpoints

        found = list_checkpoints(self.checkpoints)
        if not found:
            raise RunError(f"{self.checkpoints}: no checkpoint to load; was the run trained?")
        return found[-1]


@dataclass
class LoadedRun:
    """A finished run brought back: its recipe, task, shapes and model restored from a checkpoint."""

    directory: RunDirectory
    recipe: dict
    task: object
    shapes: object
    model: object
    optimizer: object
    step: int
    #: The run's data, built only when asked (`load_run(..., with_data=True)`).
    data: object = None


def load_run(path, with_data: bool = False, overrides=()) -> LoadedRun:
    """The run at `path`, restored from its last checkpoint, under the default strategy.

    The model is built from the recipe and the stored `data.json` alone; `with_data` also
    builds the data (the validation set, for commands that evaluate), reusing what the data
    source measured at training time.
    """
    from toolkit.recipes.loader import load_recipe
    from toolkit.runs.setup import Setup
    from toolkit.training.checkpoints import restore_checkpoint

    directory = RunDirectory(path)
    directory.require()
    step, checkpoint = directory.latest_checkpoint()
    recipe = load_recipe(directory.recipe, overrides)
    setup = Setup(recipe, strategy={"type": "default"})
    shapes, data = directory.read_shapes(), None
    if with_data or shapes is None:  # a run written before data.json learns its shapes from its data
        data = setup.data(shapes.measured if shapes else None)
        shapes = data.shapes
    model, optimizer = setup.model(shapes)
    restore_checkpoint(checkpoint, model, optimizer)
    return LoadedRun(directory, recipe, setup.task, shapes, model, optimizer, step, data)
